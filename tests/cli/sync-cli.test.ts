import t from 'tap';
import { writeSyncConfig } from '../fixtures/sync.js';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { runCommand } from '../fixtures/daemons.js';
import { regmirror as cli, regmirrorShellLine } from '../fixtures/regmirror-process.js';

t.test('regmirror sync: --dry-run, --json, the table, and exit codes', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('cli');
  reg.pushImage('team/app', '1.0.0', img);
  reg.pushImage('team/app', '1.1.0', quickImage('cli-2'));
  reg.pushImage('team/app', 'edge', quickImage('cli-edge'));
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, reg.url, [
    { name: 'app', upstream: 'registry.test', repository: 'team/app', tags: { semver: '^1' } },
    { name: 'other', upstream: 'registry.test', repository: 'team/app', tags: ['edge'] },
  ]);

  const dry = await cli(['sync', '--config', config, '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout) as { ok: boolean; entries: { job: string; images: { tag: string; status: string }[] }[] };
  t.equal(planned.ok, true);
  t.same(planned.entries.find((e) => e.job === 'app')?.images.map((i) => [i.tag, i.status]), [['1.0.0', 'planned'], ['1.1.0', 'planned']]);
  t.equal(reg.count({ kind: 'blob' }), 0, 'a dry run downloads nothing');
  t.equal(reg.count({ kind: 'manifest', method: 'HEAD' }), 3, 'each tag is resolved upstream with a HEAD');

  const json = await cli(['sync', '--config', config, '--only', 'app', '--json']);
  t.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as { ok: boolean; entries: { job: string; bytesDownloaded: number; images: { tag: string; status: string; blobs: number }[] }[] };
  t.same(result.entries.map((e) => e.job), ['app'], '--only picks the entry');
  t.same(result.entries[0]?.images.map((i) => [i.tag, i.status, i.blobs]), [['1.0.0', 'synced', 3], ['1.1.0', 'synced', 3]]);
  t.ok((result.entries[0]?.bytesDownloaded ?? 0) > 0);
  const blobGets = reg.count({ kind: 'blob', method: 'GET' });

  // Not a TTY: no bars, just the table; everything already cached.
  const table = await cli(['sync', '--config', config]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^JOB\s+IMAGE\s+STATUS\s+PLATFORMS\s+BLOBS\s+SIZE\s+FETCHED\n/);
  t.match(table.stdout, /app\s+team\/app:1\.0\.0\s+synced\s+1\s+3\s/);
  t.match(table.stdout, /2 entries, 3 images synced, .* fetched, 0 failed\n$/);
  t.notMatch(table.stdout, /\x1b\[/, 'no ANSI codes off a TTY');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), blobGets + 3, 'only the edge image was new');

  const missing = writeSyncConfig(dir, reg.url, [{ upstream: 'registry.test', repository: 'team/app', tags: ['nope'] }]);
  const failed = await cli(['sync', '--config', missing, '--json']);
  t.equal(failed.code, 1, 'exit 1 when anything failed');
  t.match(JSON.parse(failed.stdout), { ok: false, entries: [{ result: 'failure', images: [{ tag: 'nope', status: 'failed' }] }] });
  t.match(failed.stderr, /regmirror: sync failed: 1 of 1 entries had errors\n$/);

  const none = await cli(['sync', '--config', config, '--only', 'zzz']);
  t.equal(none.code, 2);
  t.match(none.stderr, /--only zzz matches no sync entry/);
  const badGlob = await cli(['sync', '--config', config, '--only', 'team/ap?']);
  t.equal(badGlob.code, 2);
  t.match(badGlob.stderr, /^regmirror: --only: segment "ap\?" of "team\/ap\?" may hold only [^\n]*\n$/);
});

t.test('regmirror sync: a bad sync line is one line and exit 2', async (t) => {
  const reg = await startTestRegistry(t);
  const dir = t.testdir({});
  const bad = [
    [{ upstream: 'registry.test', repository: 'team/app', tags: { include: '(' } }, /tags\.include: invalid regular expression/],
    [{ upstream: 'registry.test', repository: 'team/app', schedule: '* * * * * * *' }, /\.schedule: /],
    [{ upstream: 'nowhere.test', repository: 'team/app' }, /sync\.entries\[0\]\.upstream: "nowhere\.test" is not a configured upstream/],
  ] as const;
  for (const [entry, message] of bad) {
    const r = await cli(['sync', '--config', writeSyncConfig(dir, reg.url, [entry])]);
    t.equal(r.code, 2);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.match(r.stderr, /^regmirror: config error: /);
    t.match(r.stderr, message);
  }
  const empty = await cli(['sync', '--config', writeSyncConfig(dir, reg.url, [])]);
  t.equal(empty.code, 2);
  t.match(empty.stderr, /has no sync entries/);
});

t.test('regmirror sync on a TTY draws progress bars per image and for bytes', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('tty'));
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, reg.url, [{ upstream: 'registry.test', repository: 'team/app', tags: ['1'] }]);
  // util-linux `script` gives the child a pseudo-terminal.
  const r = await runCommand('script', ['-qec', regmirrorShellLine(['sync', '--config', config]), '/dev/null'], { timeoutMs: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  t.equal(r.code, 0, r.stdout);
  t.match(r.stdout, /\x1b\[2K\[#{24}\] ok registry\.test\/team\/app: team\/app:1 {2}3\/3 blobs/);
  t.match(r.stdout, /\[#{24}\] {3}[\d.]+ (B|KiB) \/ [\d.]+ (B|KiB) {2}[\d.]+ (B|KiB|MiB)\/s/, 'the bytes bar shows the rate');
  t.match(r.stdout, /JOB\s+IMAGE/);
  t.notMatch(r.stdout, /\x1b\[3\dm/, 'NO_COLOR: no colours');

});
