import t from 'tap';
import { Metrics, OTHER_REPOSITORY_LABEL } from '../../src/observability/index.js';
import { OTHER_REPOSITORIES, StatusTracker, TRACKED_REPOSITORIES } from '../../src/observability/status-tracker.js';
import { parseConfig } from '../../src/config/index.js';
import { parseDigest } from '../../src/oci/index.js';
import { parseExposition, type Exposition } from '../fixtures/prometheus.js';

function configErrorKey(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { key?: string }).key;
  }
}

async function exposition(m: Metrics): Promise<Exposition> {
  return parseExposition((await m.exposition()).body);
}

t.test('each instance has its own registry; default metrics can be left out', async (t) => {
  const a = new Metrics({ defaultMetrics: false });
  const b = new Metrics({ defaultMetrics: false });
  a.cacheLookup('blob', 'hit');
  a.cacheLookup('blob', 'hit');
  b.cacheLookup('manifest', 'stale');
  const ea = await exposition(a);
  const eb = await exposition(b);
  t.equal(ea.value('regmirror_cache_lookups_total', { kind: 'blob', outcome: 'hit' }), 2);
  t.equal(eb.value('regmirror_cache_lookups_total', { kind: 'blob', outcome: 'hit' }), 0);
  t.equal(eb.value('regmirror_cache_lookups_total', { kind: 'manifest', outcome: 'stale' }), 1);
  t.notOk(ea.families.has('process_cpu_seconds_total'));
  t.ok((await exposition(new Metrics())).families.has('process_cpu_seconds_total'));
  t.match((await a.exposition()).contentType, /^text\/plain; version=0\.0\.4/);
});

t.test('downloads in flight are read from the mirror at scrape time; finished ones are counted by result', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  t.equal((await exposition(m)).value('regmirror_blob_downloads_in_flight'), 0, 'nothing to read from yet');
  const download = { upstream: 'docker.io', repository: 'team/app', digest: parseDigest(`sha256:${'a'.repeat(64)}`), bytes: 1, size: 2, startedAt: 0, followers: 1 };
  let running = 2;
  m.watchDownloads(() => Array.from({ length: running }, () => download));
  t.equal((await exposition(m)).value('regmirror_blob_downloads_in_flight'), 2);
  running = 0;
  m.downloadFinished('committed', 100);
  m.downloadFinished('failed', 40);
  m.downloadFinished('failed', 0);
  const e = await exposition(m);
  t.equal(e.value('regmirror_blob_downloads_in_flight'), 0);
  t.equal(e.value('regmirror_blob_downloads_total', { result: 'failed' }), 2);
  t.equal(e.value('regmirror_blob_downloaded_bytes_total', { result: 'committed' }), 100);
  t.equal(e.value('regmirror_blob_downloaded_bytes_total', { result: 'failed' }), 40);
});

t.test('upstream requests, durations and the rate-limit gauge', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  m.upstreamRequest({ upstream: 'docker.io', method: 'GET', status: 200, seconds: 0.02 });
  m.upstreamRequest({ upstream: 'docker.io', method: 'GET', status: 'error', seconds: 2 });
  m.rateLimitRemaining('docker.io', 99);
  m.rateLimitRemaining('docker.io', 98);
  const e = await exposition(m);
  t.equal(e.value('regmirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', status: '200' }), 1);
  t.equal(e.value('regmirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', status: 'error' }), 1);
  t.equal(e.value('regmirror_upstream_request_duration_seconds_count', { upstream: 'docker.io', method: 'GET' }), 2);
  t.equal(e.value('regmirror_upstream_request_duration_seconds_bucket', { upstream: 'docker.io', method: 'GET', le: '0.025' }), 1);
  t.equal(e.value('regmirror_upstream_ratelimit_remaining', { upstream: 'docker.io' }), 98);
  t.equal(m.tracker.upstreams.get('docker.io')?.state, 'down');
});

t.test('http labels are bounded: unknown methods fold into OTHER', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  m.request('GET', 'blob', 200, 0.1);
  m.request('BREW', 'other', 404, 0.001);
  const e = await exposition(m);
  t.equal(e.value('regmirror_http_requests_total', { method: 'GET', route: 'blob', status: '200' }), 1);
  t.equal(e.value('regmirror_http_requests_total', { method: 'OTHER', route: 'other', status: '404' }), 1);
});

t.test('served bytes by source; per-repository series only when opted in, capped', async (t) => {
  const off = new Metrics({ defaultMetrics: false });
  off.served('docker.io', 'library/alpine', 'cache', 10);
  off.served('docker.io', 'library/alpine', undefined, 5);
  let e = await exposition(off);
  t.equal(e.value('regmirror_served_bytes_total', { source: 'cache' }), 10);
  t.equal(e.value('regmirror_served_bytes_total', { source: 'upstream' }), 0);
  t.notOk(e.families.has('regmirror_repository_served_bytes_total'));
  t.equal(off.tracker.topRepositories(5)[0]?.bytes, 15, 'the status page counts manifest bytes too');

  const on = new Metrics({ defaultMetrics: false, perRepository: 2 });
  on.served('docker.io', 'a', 'cache', 1);
  on.served('docker.io', 'b', 'upstream', 2);
  on.served('docker.io', 'c', 'cache', 4);
  on.served('ghcr.io', 'd', 'cache', 8);
  on.served('docker.io', 'a', 'cache', 16);
  e = await exposition(on);
  const series = e.samples('regmirror_repository_served_bytes_total');
  const byName = Object.fromEntries(series.map((s) => [`${s.labels['upstream']}/${s.labels['repository']}`, s.value]));
  t.same(byName, { 'docker.io/a': 17, 'docker.io/b': 2, [`docker.io/${OTHER_REPOSITORY_LABEL}`]: 4, [`ghcr.io/${OTHER_REPOSITORY_LABEL}`]: 8 });
});

t.test('cache, eviction and sync hooks', async (t) => {
  const m = new Metrics({ defaultMetrics: false, cacheMaxBytes: 1000 });
  m.cacheSize(600, 3);
  m.evicted(250);
  m.evicted(100, 4);
  m.syncStarted('nightly');
  t.equal(m.tracker.syncJobs.get('nightly')?.running, true);
  m.syncFinished({ job: 'nightly', result: 'success', bytes: 10, images: 2, finishedAt: 1_700_000_000_000 });
  m.syncFinished({ job: 'nightly', result: 'failure', bytes: 5, images: 0, finishedAt: 1_700_000_100_000, error: 'boom' });
  const e = await exposition(m);
  t.equal(e.value('regmirror_cache_size_bytes'), 600);
  t.equal(e.value('regmirror_cache_blobs'), 3);
  t.equal(e.value('regmirror_cache_max_size_bytes'), 1000);
  t.equal(e.value('regmirror_cache_evictions_total'), 5);
  t.equal(e.value('regmirror_cache_evicted_bytes_total'), 350);
  t.equal(e.value('regmirror_sync_runs_total', { job: 'nightly', result: 'success' }), 1);
  t.equal(e.value('regmirror_sync_runs_total', { job: 'nightly', result: 'failure' }), 1);
  t.equal(e.value('regmirror_sync_last_success_timestamp_seconds', { job: 'nightly' }), 1_700_000_000, 'a failure keeps the last success');
  t.equal(e.value('regmirror_sync_bytes_total', { job: 'nightly' }), 15);
  t.equal(e.value('regmirror_sync_images_total', { job: 'nightly' }), 2);
  t.match(m.tracker.syncJobs.get('nightly'), { running: false, lastResult: 'failure', lastError: 'boom', lastSuccessAt: 1_700_000_000_000 });
});

t.test('the status tracker stays bounded however many repositories are served', async (t) => {
  const tracker = new StatusTracker(() => 0);
  for (let i = 0; i < TRACKED_REPOSITORIES + 50; i++) tracker.served('docker.io', `r${i}`, 1);
  tracker.served('ghcr.io', 'late', 7);
  t.equal(tracker.repositories.size, TRACKED_REPOSITORIES + 2, 'one (other) bucket per upstream past the cap');
  const top = tracker.topRepositories(2);
  t.same(top[0], { upstream: 'docker.io', repository: OTHER_REPOSITORIES, bytes: 50 });
  t.same(top[1], { upstream: 'ghcr.io', repository: OTHER_REPOSITORIES, bytes: 7 });
  tracker.upstreamAnswered('x', 429);
  t.equal(tracker.upstreams.get('x')?.state, 'degraded');
  tracker.upstreamAnswered('x', 404);
  t.equal(tracker.upstreams.get('x')?.state, 'ok', 'a 404 is an answer');
});

t.test('config: metrics section and shutdownGrace', async (t) => {
  const base = { upstreams: { 'docker.io': { url: 'https://registry.example' } } };
  const d = parseConfig(base, { baseDir: '/srv', env: {} });
  t.same(d.metrics, { listen: undefined, perRepository: 0 });
  t.equal(d.shutdownGraceMs, 30_000);
  const c = parseConfig({ ...base, metrics: { listen: '127.0.0.1:9090', perRepository: 200 }, shutdownGrace: '2m' }, { baseDir: '/srv', env: {} });
  t.same(c.metrics, { listen: { host: '127.0.0.1', port: 9090 }, perRepository: 200 });
  t.equal(c.shutdownGraceMs, 120_000);
  t.equal(configErrorKey(() => parseConfig({ ...base, metrics: { listen: 'nowhere' } }, { baseDir: '/srv' })), 'metrics.listen');
  t.equal(configErrorKey(() => parseConfig({ ...base, metrics: { perRepository: -1 } }, { baseDir: '/srv' })), 'metrics.perRepository');
  t.equal(configErrorKey(() => parseConfig({ ...base, metrics: { perRepository: 1.5 } }, { baseDir: '/srv' })), 'metrics.perRepository');
  t.equal(configErrorKey(() => parseConfig({ ...base, metrics: { path: '/m' } }, { baseDir: '/srv' })), 'metrics.path');
  t.equal(configErrorKey(() => parseConfig({ ...base, shutdownGrace: 'soon' }, { baseDir: '/srv' })), 'shutdownGrace');
});
