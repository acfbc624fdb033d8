import t from 'tap';
import { quickImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { pausedGet, pauseNextBlobGet } from '../fixtures/cache.js';
import { apiRequests, scrape, scrapeWhen, type Exposition } from '../fixtures/prometheus.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

function lookups(m: Exposition, kind: string, outcome: string): number | undefined {
  return m.value('regmirror_cache_lookups_total', { kind, outcome });
}

t.test('/metrics is valid exposition text named by the Prometheus conventions', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const m = await scrape(mirror.url);
  const ours = [...m.families.values()].filter((f) => f.name.startsWith('regmirror_'));
  t.ok(ours.length >= 20, `${ours.length} regmirror_ families`);
  for (const f of ours) {
    t.ok(f.help.length > 0, `${f.name} has HELP`);
    if (f.type === 'counter') t.match(f.name, /_total$/, `counter ${f.name} ends in _total`);
    else t.notMatch(f.name, /_total$/, `${f.type} ${f.name} does not end in _total`);
    if (f.type === 'histogram') t.match(f.name, /_seconds$/, `histogram ${f.name} is in seconds`);
    for (const s of f.samples) {
      t.notOk('repository' in s.labels || 'digest' in s.labels, `${s.name} has no repository or digest label by default`);
    }
  }
  for (const name of [
    'regmirror_http_requests_total',
    'regmirror_http_request_duration_seconds',
    'regmirror_cache_lookups_total',
    'regmirror_served_bytes_total',
    'regmirror_upstream_requests_total',
    'regmirror_upstream_request_duration_seconds',
    'regmirror_upstream_ratelimit_remaining',
    'regmirror_blob_downloads_in_flight',
    'regmirror_digest_mismatches_total',
    'regmirror_client_lookups_total',
    'regmirror_blob_downloaded_bytes_total',
    'regmirror_cache_size_bytes',
    'regmirror_cache_blobs',
    'regmirror_cache_max_size_bytes',
    'regmirror_cache_evictions_total',
    'regmirror_cache_evicted_bytes_total',
    'regmirror_sync_runs_total',
    'regmirror_sync_last_success_timestamp_seconds',
    'regmirror_sync_bytes_total',
    'regmirror_sync_images_total',
    'process_cpu_seconds_total',
    'nodejs_heap_size_used_bytes',
  ]) {
    t.ok(m.families.has(name), `${name} is exported`);
  }
  t.equal(m.families.has('regmirror_repository_served_bytes_total'), false, 'per-repository metrics are opt-in');
  // Both sides of a ratio exist from the first scrape, at zero.
  for (const kind of ['blob', 'manifest']) for (const outcome of ['hit', 'miss', 'coalesced', 'stale']) t.equal(lookups(m, kind, outcome), 0);
  t.equal(m.value('regmirror_cache_max_size_bytes'), 2 ** 30, 'the budget from storage.maxSize');
  t.equal(m.value('regmirror_served_bytes_total', { source: 'cache' }), 0);
});

t.test('counters move as hits, misses, coalesced and stale answers happen', async (t) => {
  const reg = await startTestRegistry(t, { rateLimit: { limit: 100, remaining: 40 } });
  const img = quickImage('metrics');
  reg.pushImage('team/app', '1', img);
  const big = randomLayer(2 * 1024 * 1024, 'metrics-coalesce');
  const bigDigest = reg.putBlob('team/app', big.gz);
  let clock = Date.now();
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '1m', now: () => clock });
  const manifestUrl = `${mirror.url}/v2/team/app/manifests/1`;
  // Registry requests made so far: each scrape waits until the server has counted them all.
  let sent = 0;
  const get = (url: string, headers: Record<string, string> = {}) => (sent++, request(url, { headers }));
  const scraped = () => scrapeWhen(mirror.url, (x) => apiRequests(x) >= sent);

  // Manifest: miss, then hit.
  t.equal((await get(manifestUrl, { accept: ACCEPT })).status, 200);
  let m = await scraped();
  t.equal(lookups(m, 'manifest', 'miss'), 1);
  t.equal(lookups(m, 'manifest', 'hit'), 0);
  t.equal(m.value('regmirror_upstream_ratelimit_remaining', { upstream: 'docker.io' }), reg.rateLimit?.remaining, 'the advertised remaining pulls');
  t.equal(reg.rateLimit?.remaining, 39);
  t.equal(m.value('regmirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', status: '200' }), 1);
  t.equal(m.value('regmirror_upstream_request_duration_seconds_count', { upstream: 'docker.io', method: 'GET' }), 1);
  t.equal((await get(manifestUrl, { accept: ACCEPT })).status, 200);
  m = await scraped();
  t.equal(lookups(m, 'manifest', 'hit'), 1);
  t.equal(m.value('regmirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', status: '200' }), 1, 'a hit asks nobody');

  // Blob: miss from upstream, then hit from disk; bytes by source.
  const layer = img.layers[0]!;
  const cold = await get(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  t.equal(sha256(cold.body), layer.digest);
  await mirror.app.settled();
  const warm = await get(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  t.equal(sha256(warm.body), layer.digest);
  m = await scraped();
  t.equal(lookups(m, 'blob', 'miss'), 1);
  t.equal(lookups(m, 'blob', 'hit'), 1);
  t.equal(m.value('regmirror_served_bytes_total', { source: 'upstream' }), layer.size);
  t.equal(m.value('regmirror_served_bytes_total', { source: 'cache' }), layer.size);
  t.equal(m.value('regmirror_blob_downloads_total', { result: 'committed' }), 1);
  t.equal(m.value('regmirror_blob_downloaded_bytes_total', { result: 'committed' }), layer.size);

  // Coalesced: four concurrent cold GETs share one slow upstream download.
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'throttle', bytesPerSecond: 4 * 1024 * 1024, times: 1 });
  const bodies = await Promise.all(Array.from({ length: 4 }, () => get(`${mirror.url}/v2/team/app/blobs/${bigDigest}`)));
  for (const b of bodies) t.equal(sha256(b.body), bigDigest);
  t.equal(reg.count({ kind: 'blob', method: 'GET', pathIncludes: bigDigest }), 1, 'one upstream GET');
  await mirror.app.settled();
  m = await scraped();
  t.equal(lookups(m, 'blob', 'miss'), 2);
  t.equal(lookups(m, 'blob', 'coalesced'), 3);
  t.equal(m.value('regmirror_client_lookups_total', { kind: 'blob', outcome: 'coalesced' }), 3, 'the clients saw the same');
  t.equal(m.value('regmirror_served_bytes_total', { source: 'upstream' }), layer.size + 4 * big.size);
  t.equal(m.value('regmirror_blob_downloaded_bytes_total', { result: 'committed' }), layer.size + big.size, 'downloaded once for four clients');
  t.equal(m.value('regmirror_blob_downloads_in_flight'), 0);

  // Stale: the tag is past its TTL and upstream answers 503.
  clock += 2 * 60_000;
  reg.inject({ match: { kind: 'manifest' }, type: 'status', status: 503 });
  const stale = await get(manifestUrl, { accept: ACCEPT });
  t.equal(stale.status, 200, 'served stale');
  m = await scraped();
  t.equal(lookups(m, 'manifest', 'stale'), 1);
  t.ok((m.value('regmirror_upstream_requests_total', { upstream: 'docker.io', method: 'HEAD', status: '503' }) ?? 0) >= 1, 'the 503 is counted');

  // Per request: method, route and status, with a duration for each.
  t.equal(m.value('regmirror_http_requests_total', { method: 'GET', route: 'manifest', status: '200' }), 3);
  t.equal(m.value('regmirror_http_requests_total', { method: 'GET', route: 'blob', status: '200' }), 6);
  t.equal(m.value('regmirror_http_request_duration_seconds_count', { method: 'GET', route: 'blob' }), 6);
  t.equal(m.value('regmirror_http_request_duration_seconds_bucket', { method: 'GET', route: 'blob', le: '+Inf' }), 6);
  t.ok((m.value('regmirror_http_requests_total', { method: 'GET', route: 'metrics', status: '200' }) ?? 0) >= 4, 'earlier scrapes count too (this one is counted when it ends)');
});

t.test('a digest mismatch and a failed download are counted, and nothing is in flight after', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(64 * 1024, 'metrics-mismatch');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'wrong-bytes', at: 'last', times: 1 });
  const bad = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.ok(bad.status === 502 || !bad.complete, `an error answer or a body cut short, never a clean 200 (got ${bad.status}, complete ${bad.complete})`);
  await mirror.app.settled();
  const m = await scrape(mirror.url);
  t.equal(m.value('regmirror_digest_mismatches_total', { kind: 'blob' }), 1);
  t.equal(m.value('regmirror_digest_mismatches_total', { kind: 'manifest' }), 0);
  t.equal(m.value('regmirror_blob_downloads_total', { result: 'failed' }), 1);
  t.equal(m.value('regmirror_blob_downloads_total', { result: 'committed' }), 0);
  t.equal(m.value('regmirror_blob_downloads_in_flight'), 0);
});

t.test('two mirrors in one process keep separate registries', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('two-mirrors');
  reg.pushImage('team/app', '1', img);
  const a = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const b = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  await request(`${a.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  t.equal(lookups(await scrape(a.url), 'manifest', 'miss'), 1);
  t.equal(lookups(await scrape(b.url), 'manifest', 'miss'), 0);
});

t.test('/metrics counts a cold download in flight while upstream holds it, and none once it is done', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(2 * 1024 * 1024, 'in-flight');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const release = pauseNextBlobGet(reg, 1024 * 1024);
  const get = pausedGet(`${mirror.url}/v2/team/app/blobs/${digest}`);
  await get;
  t.equal((await scrape(mirror.url)).value('regmirror_blob_downloads_in_flight'), 1, 'one download while upstream is paused');
  release();
  t.equal(await (await get).finish(), digest);
  await mirror.app.settled();
  t.equal((await scrape(mirror.url)).value('regmirror_blob_downloads_in_flight'), 0);
});
