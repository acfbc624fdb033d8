import t from 'tap';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import type { StatusSnapshot } from '../../src/observability/index.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

async function status(url: string): Promise<StatusSnapshot> {
  const res = await request(`${url}/api/status`);
  if (res.status !== 200 || res.headers['content-type'] !== 'application/json') throw new Error(`/api/status answered ${res.status} ${String(res.headers['content-type'])}`);
  return JSON.parse(res.body.toString()) as StatusSnapshot;
}

t.test('/api/status: traffic, repositories, upstream state, cache and sync hooks', async (t) => {
  const reg = await startTestRegistry(t, { rateLimit: { limit: 100, remaining: 7 } });
  const img = quickImage('status');
  reg.pushImage('team/app', '1', img);
  reg.pushImage('team/other', '1', quickImage('status-other'));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });

  const empty = await status(mirror.url);
  t.equal(empty.traffic.hitRatio, null, 'no ratio before any lookup');
  t.same(empty.upstreams, [{ name: 'docker.io', url: `${reg.url}/`, state: 'unknown', lastStatus: null, lastRequestAt: null, rateLimitRemaining: null, requests: 0, errors: 0 }]);
  t.same(empty.topRepositories, []);
  t.same(empty.sync, []);
  t.equal(empty.cache.maxSizeBytes, 2 ** 30);

  await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  await request(`${mirror.url}/v2/team/other/manifests/1`, { headers: { accept: ACCEPT } });
  for (const layer of img.layers) {
    t.equal(sha256((await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`)).body), layer.digest);
  }
  await mirror.app.settled();
  for (const layer of img.layers) await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  const layerBytes = img.layers.reduce((n, l) => n + l.size, 0);

  // The hooks issue 4 (cache accounting) and the sync jobs call.
  mirror.app.metrics.cacheSize(2 ** 29, 12);
  mirror.app.metrics.evicted(1000, 2);
  mirror.app.metrics.syncStarted('nightly');
  mirror.app.metrics.syncFinished({ job: 'nightly', result: 'success', bytes: 5000, images: 3, finishedAt: Date.parse('2026-01-02T03:04:05Z') });
  mirror.app.metrics.syncFinished({ job: 'hourly', result: 'failure', bytes: 0, images: 0, error: 'upstream unavailable' });

  // The access path records a request when the server sees it end: wait until all were counted.
  let s = await status(mirror.url);
  for (let i = 0; i < 100 && s.traffic.bytesServed.cache < layerBytes; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    s = await status(mirror.url);
  }
  t.same(s.traffic.lookups.manifest, { hit: 0, miss: 2, coalesced: 0, stale: 0 });
  t.same(s.traffic.lookups.blob, { hit: 2, miss: 2, coalesced: 0, stale: 0 });
  t.equal(s.traffic.hitRatio, 2 / 6);
  t.same(s.traffic.bytesServed, { cache: layerBytes, upstream: layerBytes });
  t.equal(s.traffic.bytesSaved, layerBytes);
  t.equal(s.traffic.downloadsInFlight, 0);
  t.same(s.topRepositories[0], { upstream: 'docker.io', repository: 'team/app', bytes: 2 * layerBytes + img.manifest.length });
  t.equal(s.topRepositories[1]?.repository, 'team/other');
  const up = s.upstreams[0];
  t.equal(up?.state, 'ok');
  t.equal(up?.lastStatus, 200);
  t.equal(up?.rateLimitRemaining, reg.rateLimit?.remaining);
  t.equal(up?.requests, reg.requests.length, 'one count per upstream request');
  t.equal(up?.errors, 0);
  t.same(s.cache, { sizeBytes: 2 ** 29, maxSizeBytes: 2 ** 30, fill: 0.5, blobs: 12, evictions: 2, evictedBytes: 1000 });
  t.same(s.sync.find((j) => j.job === 'nightly'), {
    job: 'nightly',
    running: false,
    lastResult: 'success',
    lastRunAt: '2026-01-02T03:04:05.000Z',
    lastSuccessAt: '2026-01-02T03:04:05.000Z',
    lastError: null,
    bytes: 5000,
    images: 3,
    lastRun: { startedAt: null, finishedAt: '2026-01-02T03:04:05.000Z', images: 3, bytes: 5000, errors: 0 },
  });
  t.match(s.sync.find((j) => j.job === 'hourly'), { lastResult: 'failure', lastSuccessAt: null, lastError: 'upstream unavailable' });

  // An upstream that stops answering turns "down" and its failures count as errors.
  await reg.stop();
  await request(`${mirror.url}/v2/team/app/manifests/${'sha256:' + '3'.repeat(64)}`, { headers: { accept: ACCEPT } });
  s = await status(mirror.url);
  t.equal(s.upstreams[0]?.state, 'down');
  t.equal(s.upstreams[0]?.lastStatus, 'error');
  t.ok((s.upstreams[0]?.errors ?? 0) >= 1);
});
