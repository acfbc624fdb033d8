import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quickImage, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { regmirror } from '../fixtures/regmirror-process.js';
import { blobFile, pull } from '../fixtures/cache-cli.js';
import type { LsResult } from '../../src/admin/index.js';
import { storageLayout } from '../../src/storage/layout.js';

// `regmirror cache ls` as an operator runs it (child processes, the storage to themselves): the
// columns, a pattern, --incomplete, a sync told apart from a client pull, --storage with no config
// file and a config whose secrets are not in this shell; prune's notes; gc and lost pins.

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
const DIGEST = 'sha256:[0-9a-f]{12}';

function tmp(t: Test, name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `rm-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('cache ls: COMPLETE, PINNED, SYNCED, LAST PULLED, a pattern, --incomplete, --storage alone', async (t) => {
  const dir = tmp(t, 'cache-ls');
  const storage = path.join(dir, 'data');
  const reg = await startTestRegistry(t);
  const [app, big, tool] = ['app', 'big', 'tool'].map((n) => quickImage(`cli-ls-${n}`)) as [Image, Image, Image];
  reg.pushImage('team/app', 'v1', app);
  reg.pushImage('team/big', 'v1', big);
  reg.pushImage('other/tool', 'latest', tool);
  const base = { storage: { path: storage, pin: ['docker.io/team/**'] }, manifestTTL: '0', log: { level: 'warn' } };
  const config = path.join(dir, 'mirror.config.json');
  writeFileSync(config, JSON.stringify({ ...base, upstreams: { 'docker.io': { url: reg.url } }, sync: [{ repository: 'other/tool', tags: ['latest'] }] }));

  const sync = await regmirror(['sync', '--config', config]);
  t.equal(sync.code, 0, `regmirror sync: ${sync.stderr}`);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage, manifestTTL: '0', pin: base.storage.pin });
  await pull(t, mirror.url, 'team/app', 'v1', app);
  // Only the manifest, the config and the first layer: an image a client could not pull offline.
  t.equal((await request(`${mirror.url}/v2/team/big/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
  for (const b of [big.config, big.layers[0]!]) t.equal((await request(`${mirror.url}/v2/team/big/blobs/${b.digest}`)).status, 200);
  await mirror.close();

  const ls = await regmirror(['cache', 'ls', '--config', config]);
  t.equal(ls.code, 0, ls.stderr);
  t.equal(ls.stderr, '', 'no note: the config names every pin');
  t.match(ls.stdout, /^REPOSITORY +TAG +DIGEST +SIZE +COMPLETE +PINNED +SYNCED +LAST PULLED\n/);
  t.match(ls.stdout, new RegExp(`^docker\\.io/other/tool +latest +${DIGEST} +[\\d.]+ KiB +2/2 layers +yes +${ISO} +never$`, 'm'), 'synced, never pulled by a client');
  t.match(ls.stdout, new RegExp(`^docker\\.io/team/app +v1 +${DIGEST} +[\\d.]+ KiB +2/2 layers +yes +no +${ISO}$`, 'm'), 'pulled, never synced');
  t.match(ls.stdout, new RegExp(`^docker\\.io/team/big +v1 +${DIGEST} +[\\d.]+ KiB +1/2 layers +yes +no +${ISO}$`, 'm'), 'one layer of two');

  const incomplete = await regmirror(['cache', 'ls', '--incomplete', '--config', config]);
  t.equal(incomplete.code, 0, incomplete.stderr);
  t.match(incomplete.stdout, /^1 tag; /m);
  t.notMatch(incomplete.stdout, /team\/app|other\/tool/, 'complete images are left out');

  const team = await regmirror(['cache', 'ls', 'team/*', '--json', '--config', config]);
  const listed = JSON.parse(team.stdout) as LsResult;
  t.same(
    listed.tags.map((e) => [e.repository, e.complete, e.layers, e.pinned, e.lastSynced]),
    [
      ['team/app', true, { cached: 2, total: 2 }, true, null],
      ['team/big', false, { cached: 1, total: 2 }, true, null],
    ],
    '--json carries the same fields',
  );

  // No config file where the command runs: the storage alone. pins.json is all it knows of pins.
  const elsewhere = tmp(t, 'no-config');
  const alone = await regmirror(['cache', 'ls', '--storage', storage], { cwd: elsewhere });
  t.equal(alone.code, 0, alone.stderr);
  t.match(alone.stdout, /^3 tags; /m);
  t.equal(alone.stderr, 'PINNED shows pins.json only: storage.pin and the sync entries are in the config (give --config FILE)\n');
  const gc = await regmirror(['cache', 'gc', '--storage', storage], { cwd: elsewhere });
  t.equal(gc.code, 2, 'gc without the pins would collect pinned content: refused');
  t.equal(gc.stderr, 'regmirror: cache gc: needs the config: storage.pin and the sync entries decide what stays (give --config FILE)\n');
  const verify = await regmirror(['cache', 'verify', '--storage', storage], { cwd: elsewhere });
  t.equal(verify.code, 0, verify.stderr);

  // The deployment's config, in a shell without its secrets.
  const withSecret = path.join(dir, 'with-secret.json');
  writeFileSync(withSecret, JSON.stringify({ ...base, upstreams: { 'docker.io': { url: reg.url, username: 'ci', passwordEnv: 'REGMIRROR_TEST_UNSET_SECRET' } } }));
  const noSecret = await regmirror(['cache', 'ls', 'other/**', '--config', withSecret], { env: { REGMIRROR_TEST_UNSET_SECRET: '' } });
  t.equal(noSecret.code, 0, noSecret.stderr);
  t.match(noSecret.stdout, /^docker\.io\/other\/tool +latest /m);

  const prune = await regmirror(['cache', 'prune', '--repo', '**', '--dry-run', '--config', config]);
  t.equal(prune.code, 0, prune.stderr);
  t.match(prune.stdout, new RegExp(`^would prune docker\\.io/other/tool:latest \\(${DIGEST}\\); pinned: its content stays while the pin does; synced ${ISO}: the next sync run brings it back$`, 'm'));
  t.match(prune.stdout, new RegExp(`^would prune docker\\.io/team/app:v1 \\(${DIGEST}\\); pinned: its content stays while the pin does$`, 'm'));

  const bad = await regmirror(['cache', 'ls', 'lib**', '--config', config]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^regmirror: cache ls: PATTERN: "\*\*" must be a whole segment in "lib\*\*" \(e\.g\. "team\/\*\*"/);
  t.equal(bad.stderr.split('\n').length, 2, 'one line');
});

t.test('cache gc keeps a pinned image no tag reaches after the recency snapshot was lost', async (t) => {
  const dir = tmp(t, 'cache-gc-pins');
  const storage = path.join(dir, 'data');
  const reg = await startTestRegistry(t);
  const [old, next] = ['cli-lost-old', 'cli-lost-new'].map((n) => quickImage(n)) as [Image, Image];
  const config = path.join(dir, 'mirror.config.json');
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: reg.url } }, storage: { path: storage, pin: ['docker.io/team/**'] }, manifestTTL: '0' }));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage, manifestTTL: '0', pin: ['docker.io/team/**'] });
  reg.pushImage('team/app', 'v1', old);
  await pull(t, mirror.url, 'team/app', 'v1', old);
  reg.pushImage('team/app', 'v1', next);
  await pull(t, mirror.url, 'team/app', 'v1', next);
  await mirror.close();
  // What a serve killed with -9 before its first flush leaves: no snapshot of which repository holds what.
  rmSync(storageLayout(storage).indexSnapshot);
  const gc = await regmirror(['cache', 'gc', '--config', config]);
  t.equal(gc.code, 0, gc.stderr);
  t.match(gc.stdout, /^freed 0 blobs \(0 B\)/m);
  for (const d of [old.manifestDigest, old.config.digest, ...old.layers.map((l) => l.digest)]) t.ok(existsSync(blobFile(storage, d)), `pinned ${d.slice(0, 19)} stays`);
});
