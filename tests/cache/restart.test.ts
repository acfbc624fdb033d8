import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { PinBudgetError } from '../../src/cache/index.js';
import { parseDigest } from '../../src/oci/index.js';
import { buildImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { blobPath, cacheNumbers, isCached, MiB, putRandomBlobs, tempFiles } from '../fixtures/cache.js';
import { storageLayout } from '../../src/storage/layout.js';

function tempStorage(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'regmirror-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function pull(url: string, repo: string, digest: string): Promise<string> {
  const res = await request(`${url}/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200 || !res.complete) throw new Error(`GET ${digest}: ${res.status}`);
  return sha256(res.body);
}

t.test('recency survives a restart', async (t) => {
  const reg = await startTestRegistry(t);
  const [a, b, c, d] = putRandomBlobs(reg, 'team/app', 4, MiB) as [string, string, string, string];
  const storage = tempStorage(t);
  const options = { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 3.5 * MiB, storage };
  const first = await startMirror(t, options);
  for (const digest of [a, b, c, a]) {
    await pull(first.url, 'team/app', digest);
    await first.app.settled();
  }
  await first.close();

  const second = await startMirror(t, options);
  t.same(await cacheNumbers(second.app), { bytes: 3 * MiB, blobs: 3, evictions: 0 }, 'the totals are known at start');
  await pull(second.url, 'team/app', d);
  await second.app.settled();
  await second.app.cache.settled();
  t.same([a, b, c, d].map((x) => isCached(storage, x)), [true, false, true, true], 'b was the least recently used before the restart');
});

t.test('reconcile at start: temp files go, vanished blobs are dropped, unknown files adopted', async (t) => {
  const reg = await startTestRegistry(t);
  const [a, b] = putRandomBlobs(reg, 'team/app', 2, MiB / 4) as [string, string];
  const storage = tempStorage(t);
  const options = { upstreams: { 'docker.io': { url: reg.url } }, storage };
  const first = await startMirror(t, options);
  for (const digest of [a, b]) await pull(first.url, 'team/app', digest);
  await first.app.settled();
  await first.close();
  // What a kill -9 can leave: a half-written download, a blob unlinked mid-eviction whose record
  // and index entry remain, and a blob committed after the last index snapshot.
  writeFileSync(path.join(storageLayout(storage).tmpDir, `${'ab'.repeat(32)}.0123456789ab`), randomBytes(1000));
  unlinkSync(blobPath(storage, b));
  const lateBytes = randomBytes(MiB / 4);
  const late = reg.putBlob('team/app', lateBytes);
  mkdirSync(path.dirname(blobPath(storage, late)), { recursive: true });
  writeFileSync(blobPath(storage, late), lateBytes);

  const second = await startMirror(t, options);
  t.same(tempFiles(storage), [], 'the partial download is gone');
  const started = second.logs.map((l) => JSON.parse(l) as { msg: string; cache?: Record<string, number> }).find((l) => l.msg === 'regmirror listening');
  t.match(started?.cache, { removedTempFiles: 1, blobs: 2, adopted: 1, dropped: 1 });
  t.same(await cacheNumbers(second.app), { bytes: MiB / 2, blobs: 2, evictions: 0 });
  reg.resetRequests();
  t.equal(await pull(second.url, 'team/app', b), b, 'the vanished blob is fetched again, whole');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1);
});

t.test('pins: pinned content is never evicted; a budget below the pinned set stops start-up', async (t) => {
  const reg = await startTestRegistry(t);
  const image = buildImage({ layers: [randomLayer(MiB, 'pin-1'), randomLayer(MiB, 'pin-2')] });
  reg.pushImage('team/pinned', 'v1', image);
  const storage = tempStorage(t);
  const options = { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 4 * MiB, storage, pin: ['docker.io/team/pinned'] };
  const mirror = await startMirror(t, options);
  const manifest = await request(`${mirror.url}/v2/team/pinned/manifests/v1`, { headers: { accept: image.mediaType } });
  t.equal(manifest.status, 200);
  const blobs = [image.config.digest, ...image.layers.map((l) => l.digest)];
  for (const digest of blobs) await pull(mirror.url, 'team/pinned', digest);
  await mirror.app.settled();
  const pinnedBytes = mirror.app.cache.pinnedBytes;
  t.equal(pinnedBytes, image.manifest.length + image.config.size + image.layers.reduce((n, l) => n + l.size, 0), 'manifest, config and layers are pinned');

  const others = putRandomBlobs(reg, 'team/other', 4, MiB / 2);
  for (const digest of others) {
    await pull(mirror.url, 'team/other', digest);
    await mirror.app.settled();
  }
  await mirror.app.cache.settled();
  t.ok(blobs.every((d) => isCached(storage, d)) && isCached(storage, image.manifestDigest), 'the pinned image is whole although it is the oldest');
  t.ok(others.some((d) => !isCached(storage, d)), 'unpinned blobs were evicted instead');
  t.ok((await cacheNumbers(mirror.app)).bytes <= 4 * MiB, 'pinned bytes count against the budget');
  t.equal(await mirror.app.cache.remove(parseDigest(image.layers[0]!.digest)), 'pinned', 'the safe delete refuses pinned content');
  await mirror.close();

  const config = parseConfig(
    { listen: '127.0.0.1:0', storage: { path: storage, maxSize: MiB, pin: ['docker.io/team/pinned'] }, upstreams: { 'docker.io': { url: reg.url } }, log: { level: 'silent' } },
    { baseDir: storage, env: {} },
  );
  const small = new App(config);
  t.teardown(() => small.close(0));
  const failed: unknown = await small.start().then(() => undefined, (e: unknown) => e);
  t.type(failed, PinBudgetError);
  t.match((failed as Error).message, /^the pinned content already cached, [\d.]+ MiB, does not fit in storage\.maxSize 1 MiB: raise storage\.maxSize or narrow storage\.pin$/);
});
