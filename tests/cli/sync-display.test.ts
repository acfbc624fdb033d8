import t from 'tap';
import path from 'node:path';
import { createAdminSocketServer, releaseStorage, tryHoldStorage } from '../../src/admin/index.js';
import { CliError } from '../../src/cli/cli-error.js';
import { formatBytes, formatDuration, formatTime } from '../../src/cli/format.js';
import { syncCommand } from '../../src/cli/sync.js';
import { colorWanted, PlainProgress, RateMeter, TtyProgress } from '../../src/cli/sync-progress.js';
import { entryTable, summary } from '../../src/cli/sync-table.js';
import type { EntryResult } from '../../src/sync/index.js';
import { quickImage } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { UP, writeSyncConfig } from '../fixtures/sync.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// What `regmirror sync` draws, in-process (the CLI children of sync-cli*.test.ts are not covered).

function sink(isTTY = true): NodeJS.WritableStream & { isTTY: boolean; text: string } {
  const out = { isTTY, text: '', write: (chunk: string) => ((out.text += chunk), true) };
  return out as unknown as NodeJS.WritableStream & { isTTY: boolean; text: string };
}

t.test('sizes and times: binary units with one decimal, ISO 8601 UTC to the second', async (t) => {
  t.equal(formatBytes(593), '593 B');
  t.equal(formatBytes(80_000_000), '76.3 MiB');
  t.equal(formatBytes(3 * 1024 ** 4 * 1024), '3072.0 TiB');
  t.equal(formatTime(Date.UTC(2026, 11, 6, 15, 49, 43, 512)), '2026-12-06T15:49:43Z');
  t.equal(formatTime(new Date(0)), '1970-01-01T00:00:00Z');
  t.same([formatDuration(4_400), formatDuration(185_000), formatDuration(7_800_000)], ['4s', '3m05s', '2h10m']);
});

t.test('colours only on a terminal and without NO_COLOR', async (t) => {
  t.equal(colorWanted({ isTTY: true }, {}), true);
  t.equal(colorWanted({ isTTY: true }, { NO_COLOR: '1' }), false);
  t.equal(colorWanted({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR is unset (no-color.org)');
  t.equal(colorWanted({ isTTY: false }, {}), false);
});

t.test('the bars: colour, rate and ETA, and problems as readable lines above them, once', async (t) => {
  let now = 1_000_000;
  const out = sink();
  const tty = new TtyProgress(out, { color: true, now: () => now });
  tty.imageStarted('app', 'team/app:1', 2, 4 * 1024 * 1024);
  now += 2000;
  tty.blobDone('app', 'team/app:1', 2 * 1024 * 1024);
  tty.note('app', 'info', 'already running since 2026-12-06T15:49:43.000Z (started by the API); following that run');
  t.equal(tty.noted, false, 'a fact is not a problem');
  tty.note('app', 'warning', 'upstream registry.test unavailable; retry 1 in 1s');
  tty.finish();
  t.match(out.text, /\x1b\[2K\x1b\[2mapp: already running since/);
  t.match(out.text, /\x1b\[2K\x1b\[33mwarning:\x1b\[0m app: upstream registry\.test unavailable; retry 1 in 1s\n/);
  t.match(out.text, /\[#{12}-{12}\] \.\. app: team\/app:1 {2}1\/2 blobs\n/);
  t.match(out.text, /2\.0 MiB \/ 4\.0 MiB {2}1\.0 MiB\/s {2}ETA 2s\n/);
  t.equal(tty.noted, true);

  now += 1000;
  tty.blobDone('app', 'team/app:1', 2 * 1024 * 1024);
  tty.imageFinished('app', 'team/app:1', true);
  tty.imageStarted('other', 'team/other:1', 1, 0);
  tty.imageFinished('other', 'team/other:1', false);
  out.text = '';
  tty.finish();
  t.match(out.text, /^\x1b\[2A/, 'redrawn in place');
  t.match(out.text, /\x1b\[32mok\x1b\[0m app: team\/app:1 {2}2\/2 blobs/);
  t.match(out.text, /\x1b\[31m!!\x1b\[0m other: team\/other:1/);
  t.notMatch(out.text, /warning:/, 'a note is printed once');
  t.notMatch(out.text, /ETA/, 'nothing left: no ETA');
});

t.test('off a terminal: a plain line with images, blobs, bytes, rate and ETA', async (t) => {
  let now = Date.UTC(2026, 11, 6, 16, 20, 0);
  const out = sink(false);
  const plain = new PlainProgress(out, { now: () => now, intervalMs: 5 });
  t.equal(plain.line(), '2026-12-06T16:20:00Z sync: 0/0 images, 0/0 blobs, 0 B / 0 B', 'a run still resolving tags says so too');
  plain.imageStarted('app', 'team/app:1', 3, 30 * 1024 * 1024);
  now += 5000;
  plain.blobDone('app', 'team/app:1', 10 * 1024 * 1024);
  t.equal(plain.line(), '2026-12-06T16:20:05Z sync: 0/1 images, 1/3 blobs, 10.0 MiB / 30.0 MiB  2.0 MiB/s  ETA 10s');
  plain.imageFinished();
  await new Promise((resolve) => setTimeout(resolve, 30));
  plain.finish();
  t.match(out.text, /^2026-12-06T16:20:05Z sync: 1\/1 images/, 'printed on its interval');
  const printed = out.text;
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(out.text, printed, 'and never after finish');
});

t.test('the rate spans the last seconds: a stall shows as a falling rate', async (t) => {
  let now = 0;
  const meter = new RateMeter(() => now);
  t.equal(meter.describe(0, 100), '', 'nothing moved yet');
  for (let i = 1; i <= 20; i++) {
    now += 1000;
    meter.add(i * 1024);
  }
  t.equal(meter.describe(20 * 1024, 40 * 1024), '  1.0 KiB/s  ETA 20s');
  now += 10_000;
  t.equal(meter.describe(20 * 1024, 40 * 1024), '  512 B/s  ETA 40s');
});

const base = { upstream: UP, repository: 'team/app', startedAt: '', finishedAt: '', bytesDownloaded: 0, pruned: [], stoppedByRateLimit: null };

t.test('the summary: statuses in words and colour, problems after the table unless already shown', async (t) => {
  const dry: EntryResult[] = [
    {
      ...base,
      job: 'app',
      dryRun: true,
      result: 'success',
      errors: [],
      warnings: [],
      pruned: ['team/app:old'],
      images: [
        { repository: 'team/app', tag: '1', digest: null, status: 'up-to-date', manifests: 2, blobs: 6, bytes: 2048, downloaded: 0, wouldDownload: { blobs: 0, bytes: 0 } },
        { repository: 'team/app', tag: '2', digest: null, status: 'planned', manifests: 2, blobs: 6, bytes: 80_000_000, downloaded: 0, wouldDownload: { blobs: 3, bytes: 80_000_000 } },
      ],
    },
    { ...base, job: 'bad', dryRun: true, result: 'failure', errors: ['repository team/ap not found on registry.test (check its name)'], warnings: [], images: [] },
    { ...base, job: 'quiet', dryRun: true, result: 'success', errors: [], warnings: [], images: [] },
  ];
  const text = summary(dry, { color: true });
  t.match(text, /\napp {4}team\/app:1  \x1b\[32mup to date {13}\x1b\[0m  2 {10}6 {6}2\.0 KiB\n/);
  t.match(text, /\x1b\[33mwould download 76\.3 MiB\x1b\[0m/);
  t.match(text, /\nbad {4}- {11}\x1b\[31mfailed/);
  t.match(text, /\nquiet  - {11}\x1b\[32mnothing to do/);
  t.match(text, /\napp: would prune team\/app:old\n/);
  t.match(text, /\n\x1b\[31merror:\x1b\[0m bad: repository team\/ap not found/);
  t.match(text, /3 entries, 2 images: 1 up to date, 1 would download 76\.3 MiB, 0 not found; 1 failed\n$/);
  t.notMatch(summary(dry, { noted: true }), /error:/, 'shown live on the terminal: not repeated');

  const run: EntryResult[] = [{ ...base, job: 'app', dryRun: false, result: 'success', errors: [], warnings: ['w1', 'w2'], bytesDownloaded: 2048, images: [{ repository: 'team/app', tag: '1', digest: null, status: 'synced', manifests: 1, blobs: 3, bytes: 2048, downloaded: 2048 }] }];
  t.match(summary(run), /^JOB\s+IMAGE\s+STATUS\s+PLATFORMS\s+BLOBS\s+SIZE\s+FETCHED\napp\s+team\/app:1\s+synced\s+1\s+3\s+2\.0 KiB\s+2\.0 KiB\nwarning: app: w1\nwarning: app: w2\n1 entries, 1 images synced, 2\.0 KiB fetched, 0 failed, 2 warnings\n$/);
});

t.test('sync --list rows: running, failed, never run', async (t) => {
  const row = { schedule: null, nextRunAt: null, running: false, runningSince: null, runningOrigin: null, lastOrigin: null, lastResult: null, lastRunAt: null, lastSuccessAt: null, lastError: null, bytes: 0, images: 0, lastRun: null };
  const text = entryTable(
    [
      { ...row, job: 'a', schedule: '6h', running: true, runningOrigin: 'api', lastOrigin: 'scheduled', lastResult: 'success', lastRunAt: '2026-12-06T10:00:00.000Z' },
      { ...row, job: 'b', lastOrigin: 'cli', lastResult: 'failure', lastError: 'boom', lastRun: { startedAt: null, finishedAt: '2026-12-06T11:00:00.000Z', images: 0, bytes: 0, errors: 1 } },
    ],
    true,
  );
  t.ok(text.includes('\na      6h        -         running (api)  2026-12-06T10:00:00Z  scheduled  \x1b[32msuccess\x1b[0m\n'), text);
  t.ok(text.includes('\nb      -         -         idle           2026-12-06T11:00:00Z  cli        \x1b[31mfailure: boom\x1b[0m\n'), text);
});

t.test('syncCommand in-process: standalone, beside a server, --list either way', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('display-cmd'));
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, reg.url, [{ name: 'app', upstream: UP, repository: 'team/app', tags: ['1'], schedule: '1h' }]);
  const output = { stdout: '', stderr: '' };
  const write = { stdout: process.stdout.write, stderr: process.stderr.write };
  const capture = async (fn: () => Promise<void>): Promise<{ stdout: string; stderr: string; error?: unknown }> => {
    output.stdout = output.stderr = '';
    process.stdout.write = ((chunk: string) => ((output.stdout += chunk), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string) => ((output.stderr += chunk), true)) as typeof process.stderr.write;
    try {
      await fn();
      return { ...output };
    } catch (error) {
      return { ...output, error };
    } finally {
      process.stdout.write = write.stdout;
      process.stderr.write = write.stderr;
    }
  };

  const alone = await capture(() => syncCommand({ config, dryRun: true }));
  t.equal(alone.error, undefined);
  t.match(alone.stdout, /app\s+team\/app:1\s+would download/);
  const list = await capture(() => syncCommand({ config, list: true }));
  t.match(list.stdout, /\napp\s+1h\s+-\s+idle/);
  t.match(list.stderr, /no serve is running/);
  const typo = await capture(() => syncCommand({ config, only: 'zzz' }));
  t.ok(typo.error instanceof CliError && typo.error.exitCode === 2);

  // A storage held by a cache command: refused in one line naming it, nothing run there.
  const holder = createAdminSocketServer({ kind: 'cache', pid: 4242, command: 'cache verify' }, undefined, () => {});
  t.ok((await tryHoldStorage(path.join(dir, 'cache'), holder)).held);
  const busy = await capture(() => syncCommand({ config }));
  await releaseStorage(holder);
  t.ok(busy.error instanceof CliError && busy.error.exitCode === 1);
  t.match((busy.error as Error).message, /^storage .*cache is in use by regmirror cache verify \(pid 4242\)$/);

  const mirror = await startMirror(t, { upstreams: { [UP]: { url: reg.url } }, storage: path.join(dir, 'cache'), sync: [{ name: 'app', upstream: UP, repository: 'team/app', tags: ['1'], schedule: '1h' }] });
  const inServer = await capture(() => syncCommand({ config, json: true }));
  t.equal(inServer.error, undefined, String(inServer.error));
  t.match(JSON.parse(inServer.stdout), { ok: true, entries: [{ job: 'app', images: [{ status: 'synced' }] }] });
  t.match(inServer.stderr, /sync runs inside a running regmirror serve/);
  const live = await capture(() => syncCommand({ config, list: true, json: true }));
  t.match(JSON.parse(live.stdout), { server: true, entries: [{ job: 'app', lastOrigin: 'cli', nextRunAt: /Z$/ }] });
  t.equal(mirror.app.metrics.tracker.syncJobs.get('app')?.lastOrigin, 'cli');
});
