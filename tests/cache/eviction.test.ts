import t from 'tap';
import { parseDigest } from '../../src/oci/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { cacheNumbers, isCached, MiB, pausedGet, putRandomBlobs, tempFiles } from '../fixtures/cache.js';
import { closeAndCheckInvariants } from '../fixtures/cache-invariants.js';

async function pull(url: string, digest: string): Promise<string> {
  const res = await request(`${url}/v2/team/app/blobs/${digest}`);
  if (res.status !== 200 || !res.complete) throw new Error(`GET ${digest}: ${res.status}`);
  return sha256(res.body);
}

t.test('least recently used blobs go first and the cache stays inside the budget', async (t) => {
  const reg = await startTestRegistry(t);
  const [a, b, c, d] = putRandomBlobs(reg, 'team/app', 4, MiB) as [string, string, string, string];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 3.5 * MiB });
  for (const digest of [a, b, c]) {
    t.equal(await pull(mirror.url, digest), digest);
    await mirror.app.settled();
  }
  t.same(await cacheNumbers(mirror.app), { bytes: 3 * MiB, blobs: 3, evictions: 0 });
  t.equal(await pull(mirror.url, a), a, 'a warm read makes a the most recent');
  t.equal(await pull(mirror.url, d), d);
  await mirror.app.settled();
  await mirror.app.cache.settled();
  t.same([a, b, c, d].map((x) => isCached(mirror.storage, x)), [true, false, true, true], 'b, the least recently used, was evicted');
  t.same(await cacheNumbers(mirror.app), { bytes: 3 * MiB, blobs: 3, evictions: 1 });
  const evictedBytes = (await mirror.app.metrics.evictedBytes.get()).values[0]?.value;
  t.equal(evictedBytes, MiB);

  reg.resetRequests();
  t.equal(await pull(mirror.url, b), b, 'an evicted blob is fetched again on demand');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1);
  await mirror.app.settled();
  await mirror.app.cache.settled();
  t.ok((await cacheNumbers(mirror.app)).bytes <= 3.5 * MiB, 'still inside the budget');
  t.notOk(isCached(mirror.storage, c), 'c was next in line');
  await closeAndCheckInvariants(t, mirror, { maxSize: 3.5 * MiB });
});

t.test('a blob larger than the whole budget streams to the client and is not kept', async (t) => {
  const reg = await startTestRegistry(t);
  const [small, big] = [putRandomBlobs(reg, 'team/app', 1, MiB / 2)[0], putRandomBlobs(reg, 'team/app', 1, 3 * MiB)[0]] as [string, string];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 2 * MiB });
  t.equal(await pull(mirror.url, small), small);
  await mirror.app.settled();
  const res = await request(`${mirror.url}/v2/team/app/blobs/${big}`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-length'], String(3 * MiB));
  t.equal(sha256(res.body), big, 'complete and correct');
  await mirror.app.settled();
  t.notOk(isCached(mirror.storage, big), 'not cached');
  t.ok(isCached(mirror.storage, small), 'nothing was evicted for it');
  t.same(tempFiles(mirror.storage), [], 'no temp file kept');
  const ranged = await request(`${mirror.url}/v2/team/app/blobs/${big}`, { headers: { range: 'bytes=100-199' } });
  t.equal(ranged.status, 206, 'ranges work on the uncached path too');
  t.equal(ranged.body.length, 100);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 3, 'each request went upstream');
  t.same(await cacheNumbers(mirror.app), { bytes: MiB / 2, blobs: 1, evictions: 0 });
  await closeAndCheckInvariants(t, mirror, { maxSize: 2 * MiB });
});

t.test('a blob being read is never deleted: eviction passes over it', async (t) => {
  const reg = await startTestRegistry(t);
  const [big] = putRandomBlobs(reg, 'team/app', 1, 16 * MiB) as [string];
  const [b, c] = putRandomBlobs(reg, 'team/app', 2, MiB) as [string, string];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 17.5 * MiB });
  for (const digest of [big, b]) {
    t.equal(await pull(mirror.url, digest), digest);
    await mirror.app.settled();
  }
  // A slow client holds the big blob open; then b is read, so the big one is the least recently used.
  const reader = await pausedGet(`${mirror.url}/v2/team/app/blobs/${big}`);
  t.equal(await pull(mirror.url, b), b);
  t.equal(await pull(mirror.url, c), c);
  await mirror.app.settled();
  await mirror.app.cache.settled();
  t.ok(isCached(mirror.storage, big), 'the blob being read is still there');
  t.notOk(isCached(mirror.storage, b), 'b was evicted instead');
  t.equal(await reader.finish(), big, 'the slow client got every byte');
  t.equal(await mirror.app.cache.remove(parseDigest(c)), 'removed', 'the safe delete removes a blob nobody reads');
  t.equal(await mirror.app.cache.remove(parseDigest(c)), 'absent');
  await closeAndCheckInvariants(t, mirror, { maxSize: 17.5 * MiB });
});

t.test('a manifest whose blobs were evicted is still served; its blobs come back on demand', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('evict-me');
  reg.pushImage('team/app', 'v1', image);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 4 * MiB });
  const manifest = await request(`${mirror.url}/v2/team/app/manifests/v1`, { headers: { accept: image.mediaType } });
  t.equal(manifest.status, 200);
  for (const layer of image.layers) t.equal(await pull(mirror.url, layer.digest), layer.digest);
  await mirror.app.settled();
  // Fill the budget with other blobs: the image's blobs are the oldest and go.
  for (const digest of putRandomBlobs(reg, 'team/app', 4, MiB)) {
    await pull(mirror.url, digest);
    await mirror.app.settled();
  }
  await mirror.app.cache.settled();
  t.notOk(image.layers.some((l) => isCached(mirror.storage, l.digest)), 'the layers were evicted');
  const again = await request(`${mirror.url}/v2/team/app/manifests/v1`, { headers: { accept: image.mediaType } });
  t.equal(again.status, 200);
  t.equal(sha256(again.body), image.manifestDigest);
  for (const layer of image.layers) t.equal(await pull(mirror.url, layer.digest), layer.digest, 'refetched');
  await closeAndCheckInvariants(t, mirror, { maxSize: 4 * MiB });
});
