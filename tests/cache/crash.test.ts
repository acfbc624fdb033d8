import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { regmirror, startServe } from '../fixtures/regmirror-process.js';
import { isCached, MiB, pausedGet, tempFiles } from '../fixtures/cache.js';
import { checkCacheInvariants, closeAndCheckInvariants } from '../fixtures/cache-invariants.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'regmirror-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('kill -9 mid-download: after a restart nothing partial is served and the temp file is gone', async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob('team/app', randomBytes(8 * MiB));
  const dir = tempDir(t);
  const storage = path.join(dir, 'data');
  const config = { listen: '127.0.0.1:0', storage: { path: storage }, upstreams: { 'docker.io': { url: reg.url } }, log: { level: 'info' } };
  // Upstream sends 2 MiB and then holds the connection: the download is mid-way when the process dies.
  const never = new Promise<void>(() => {});
  const removeFault = reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 2 * MiB, release: never });

  const first = await startServe(t, { dir, config });
  const url = first.url;
  const client = await pausedGet(`${url}/v2/team/app/blobs/${digest}`);
  t.equal(tempFiles(storage).length, 1, 'a temp file holds the partial download');
  first.daemon.kill('SIGKILL');
  const died = await first.daemon.exit;
  t.equal(died.signal, 'SIGKILL');
  client.res.destroy();
  removeFault();

  const second = await startServe(t, { dir, config });
  const url2 = second.url;
  t.same(tempFiles(storage), [], 'the orphaned temp file was removed at start');
  t.notOk(isCached(storage, digest), 'no partial blob in the store');
  reg.resetRequests();
  const res = await request(`${url2}/v2/team/app/blobs/${digest}`);
  t.equal(res.status, 200);
  t.ok(res.complete);
  t.equal(sha256(res.body), digest, 'the whole, verified blob');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'fetched afresh from upstream');
  second.daemon.kill('SIGTERM');
  t.equal((await second.daemon.exit).code, 0, 'a clean shutdown after recovery');
  // serve's default budget (the config sets none).
  t.same(await checkCacheInvariants(storage, { maxSize: 20 * 1024 * MiB }), [], 'the cache directory is sound');
});

t.test('serve exits 2 with one line when the cached pinned content exceeds storage.maxSize', async (t) => {
  const reg = await startTestRegistry(t);
  const image = buildImage({ layers: [randomLayer(MiB, 'cli-pin')] });
  reg.pushImage('team/pinned', 'v1', image);
  const dir = tempDir(t);
  const storage = path.join(dir, 'data');
  const pin = ['docker.io/team/pinned'];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage, pin });
  await request(`${mirror.url}/v2/team/pinned/manifests/v1`, { headers: { accept: image.mediaType } });
  for (const d of [image.config.digest, image.layers[0]!.digest]) await request(`${mirror.url}/v2/team/pinned/blobs/${d}`);
  await mirror.app.settled();
  const pinnedDigests = [image.manifestDigest, image.config.digest, image.layers[0]!.digest];
  await closeAndCheckInvariants(t, mirror, { maxSize: 1024 * MiB, pinnedDigests });

  const file = path.join(dir, 'mirror.config.json');
  writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', storage: { path: storage, maxSize: '512KiB', pin }, upstreams: { 'docker.io': { url: reg.url } }, log: { level: 'silent' } }));
  const run = await regmirror(['serve', '--config', file]);
  t.equal(run.code, 2);
  const lines = run.stderr.trim().split('\n');
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /^regmirror: config error: the pinned content already cached, [\d.]+ (KiB|MiB), does not fit in storage\.maxSize 512 KiB: raise storage\.maxSize or narrow storage\.pin$/, 'in the units the operator wrote, no byte counts');
  t.same(await checkCacheInvariants(storage, { maxSize: 1024 * MiB, pinnedDigests }), [], 'the refused start deleted nothing');
});
