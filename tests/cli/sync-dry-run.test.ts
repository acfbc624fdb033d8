import t from 'tap';
import { writeSyncConfig } from '../fixtures/sync.js';
import { buildImage, quickImage, randomLayer } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { regmirror as cli, startRegmirror } from '../fixtures/regmirror-process.js';

t.test('regmirror sync --dry-run: not found, would download, a warning for a filter that matches nothing, exit 1', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('cli-dry');
  reg.pushImage('team/app', '1', img);
  const size = img.config.size + img.layers.reduce((n, l) => n + l.size, 0);
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, reg.url, [
    { name: 'typo', upstream: 'registry.test', repository: 'team/ap', tags: ['1'] },
    { name: 'app', upstream: 'registry.test', repository: 'team/app', tags: ['1'] },
    { name: 'no-match', upstream: 'registry.test', repository: 'team/app', tags: { semver: '>=5' } },
  ]);
  const r = await cli(['sync', '--config', config, '--dry-run']);
  t.equal(r.code, 1, 'a misspelled repository fails the dry run');
  t.match(r.stdout, /^JOB\s+IMAGE\s+STATUS\s+PLATFORMS\s+BLOBS\s+SIZE\n/, 'no FETCHED column: nothing is fetched');
  t.match(r.stdout, /\ntypo\s+team\/ap:1\s+not found\s+0\s+0\s+0 B\n/);
  t.ok(r.stdout.includes(`\napp       team/app:1  would download ${size} B  1          3      ${size} B\n`), 'the real platform, blob and size counts');
  t.match(r.stdout, /\nno-match\s+-\s+no matching tag\s+0\s+0\s+0 B\n/);
  t.match(r.stdout, /\nwarning: no-match: no tag of team\/app matches the tag filter \(semver >=5\) \(1 tags upstream\)\n/);
  t.match(r.stdout, /\nerror: typo: team\/ap:1: registry\.test\/team\/ap:1 not found upstream \(check the repository name and the tag\)\n/);
  t.match(r.stdout, /\n3 entries, 2 images: 0 up to date, 1 would download \d+ B, 1 not found; 1 failed, 1 warning\n$/);
  t.equal(r.stdout.match(/no tag of team\/app matches/g)?.length, 1, 'the warning is printed once');
  t.equal(reg.count({ kind: 'blob' }), 0);

  const dead = writeSyncConfig(dir, 'http://127.0.0.1:9', { retries: 0, entries: [{ upstream: 'registry.test', repository: 'team/app', tags: ['1'] }] });
  const down = await cli(['sync', '--config', dead, '--dry-run', '--json']);
  t.equal(down.code, 1, 'a dead upstream is not a green dry run');
  t.match(JSON.parse(down.stdout), { ok: false, entries: [{ result: 'failure', errors: [/./] }] });
});

t.test('off a terminal, a long sync prints a plain progress line every few seconds', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(200_000, 'cli-plain');
  reg.pushImage('team/app', '1', buildImage({ layers: [layer] }));
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', pathIncludes: layer.digest }, type: 'pause-after', bytes: 10_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, reg.url, [{ upstream: 'registry.test', repository: 'team/app', tags: ['1'] }]);
  const run = startRegmirror(t, ['sync', '--config', config]);
  const line = await run.waitForLine(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ sync: 0\/1 images, 1\/2 blobs, [\d.]+ B \/ [\d.]+ KiB/, 60_000);
  t.ok(line, 'a plain line while the layer is stalled');
  release();
  t.equal((await run.exit).code, 0);
  t.notOk(run.lines.some((l) => l.includes('\x1b[')), 'no ANSI codes off a terminal');
});

t.test('regmirror sync --list without a server: the entries and their schedules from the config', async (t) => {
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, 'http://127.0.0.1:9', [
    { name: 'nightly', upstream: 'registry.test', repository: 'team/app', schedule: '0 3 * * *' },
    { name: 'hourly', upstream: 'registry.test', repository: 'team/app', schedule: '90m' },
  ]);
  const r = await cli(['sync', '--config', config, '--list']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, ['ENTRY    SCHEDULE   NEXT RUN  STATE  LAST RUN  BY  RESULT', 'nightly  0 3 * * *  -         idle   -         -   -', 'hourly   90m        -         idle   -         -   -', ''].join('\n'));
  t.match(r.stderr, /^regmirror: no serve is running on .*cache: next and last runs are known only to a running server\n$/);
});
