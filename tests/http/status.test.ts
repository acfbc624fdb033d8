import t from 'tap';
import { buildIndex, quickImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { until } from '../fixtures/poll.js';
import { MiB, putRandomBlobs } from '../fixtures/cache.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';
import type { StatusSnapshot } from '../../src/observability/index.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
const ISO = /^\d{4}-\d\d-\d\dT/;

async function status(url: string): Promise<StatusSnapshot> {
  const res = await request(`${url}/api/status`);
  if (res.status !== 200 || res.headers['content-type'] !== 'application/json') throw new Error(`/api/status answered ${res.status} ${String(res.headers['content-type'])}`);
  return JSON.parse(res.body.toString()) as StatusSnapshot;
}

t.test('/api/status: traffic, repositories, upstream state and what the cache holds', async (t) => {
  const reg = await startTestRegistry(t, { rateLimit: { limit: 100, remaining: 7 } });
  const img = quickImage('status');
  reg.pushImage('team/app', '1', img);
  const other = quickImage('status-other');
  reg.pushImage('team/other', '1', other);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });

  const empty = await status(mirror.url);
  t.equal(empty.traffic.hitRatio, null, 'no ratio before any lookup');
  t.same(empty.upstreams, [{ name: 'docker.io', url: `${reg.url}/`, state: 'unknown', lastStatus: null, lastRequestAt: null, rateLimitRemaining: null, requests: 0, errors: 0, lastError: null, proxy: null, insecureSkipVerify: false, endpoints: [], authFailure: null }]);
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

  // The access path records a request when the server sees it end: wait until all were counted.
  let s = await until('every request counted', () => status(mirror.url), (x) => x.traffic.bytesServed.cache >= layerBytes);
  t.same(s.traffic.lookups.manifest, { hit: 0, miss: 2, coalesced: 0, stale: 0, negative: 0 });
  t.same(s.traffic.lookups.blob, { hit: 2, miss: 2, coalesced: 0, stale: 0, negative: 0 });
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
  // The cache holds what the client pulled, each once: two manifests and the layers.
  const cached = layerBytes + img.manifest.length + other.manifest.length;
  t.same(s.cache, { sizeBytes: cached, maxSizeBytes: 2 ** 30, fill: cached / 2 ** 30, blobs: img.layers.length + 2, evictions: 0, evictedBytes: 0 });

  // An upstream that stops answering turns "down" and its failures count as errors.
  await reg.stop();
  await request(`${mirror.url}/v2/team/app/manifests/${'sha256:' + '3'.repeat(64)}`, { headers: { accept: ACCEPT } });
  s = await status(mirror.url);
  t.equal(s.upstreams[0]?.state, 'down');
  t.equal(s.upstreams[0]?.lastStatus, 'error');
  t.equal(s.upstreams[0]?.errors, 2, 'the failed manifest request and its one retry on a refused connection');
});

t.test('/api/status: evictions are the ones the cache made', async (t) => {
  const reg = await startTestRegistry(t);
  const [a, b] = putRandomBlobs(reg, 'team/app', 2, MiB) as [string, string];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: 1.5 * MiB });
  for (const digest of [a, b]) {
    t.equal(sha256((await request(`${mirror.url}/v2/team/app/blobs/${digest}`)).body), digest);
    await mirror.app.settled();
  }
  // Eviction runs after the commit that overflowed the budget; the index settles once it is done.
  await mirror.app.cache.settled();
  t.same((await status(mirror.url)).cache, { sizeBytes: MiB, maxSizeBytes: 1.5 * MiB, fill: MiB / (1.5 * MiB), blobs: 1, evictions: 1, evictedBytes: MiB });
});

t.test('/api/status: sync jobs as a real run left them', async (t) => {
  const img = quickImage('status-sync');
  const { reg, mirror } = await startSyncWorld(t, {
    sync: [
      { name: 'nightly', upstream: UP, repository: 'team/app', tags: ['1'] },
      { name: 'hourly', upstream: UP, repository: 'team/app', tags: ['missing'] },
    ],
  });
  reg.pushImage('team/app', '1', img);
  const run = await mirror.app.sync.run();
  t.same(run.entries.map((e) => [e.job, e.result]), [['nightly', 'success'], ['hourly', 'failure']]);
  const s = await status(mirror.url);
  const bytes = img.config.size + img.layers.reduce((n, l) => n + l.size, 0);
  const nightly = s.sync.find((j) => j.job === 'nightly');
  t.match(nightly, { running: false, lastResult: 'success', lastError: null, bytes, images: 1, lastRun: { images: 1, bytes, errors: 0, startedAt: ISO, finishedAt: ISO } });
  t.equal(nightly?.lastSuccessAt, nightly?.lastRunAt, 'the last run was the last success');
  // Sync looks the cache up and downloads, but no client did: no lookups, no ratio, nothing saved yet.
  t.same(s.traffic.lookups.blob, { hit: 0, miss: 0, coalesced: 0, stale: 0, negative: 0 }, 'sync lookups are not client lookups');
  t.same(s.traffic.lookups.manifest, { hit: 0, miss: 0, coalesced: 0, stale: 0, negative: 0 });
  t.equal(s.traffic.hitRatio, null);
  t.equal(s.traffic.bytesDownloaded, bytes, 'the blobs sync downloaded');
  t.equal(s.traffic.bytesSaved, 0, 'synced bytes no client pulled yet save nothing (and never go negative)');
  t.match(s.sync.find((j) => j.job === 'hourly'), { running: false, lastResult: 'failure', lastSuccessAt: null, lastError: /missing/, bytes: 0, images: 0, lastRun: { images: 0, errors: 1 } });
});

t.test('/api/status after a coalesced pull: downloaded once, as the upstream counts it; the followers are saved', async (t) => {
  const N = 4;
  const reg = await startTestRegistry(t);
  const layer = randomLayer(MiB, 'status-coalesced');
  const digest = reg.putBlob('team/app', layer.gz);
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 256 * 1024, release: new Promise<void>((r) => (release = r)), times: 1 });
  t.teardown(() => release());
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const pulls = Array.from({ length: N }, () => request(`${mirror.url}/v2/team/app/blobs/${digest}`));

  // Held mid-body: the one download shows in the in-flight table with every client following it.
  const held = await until('every client follows the download', () => status(mirror.url), (x) => x.inFlight[0]?.followers === N && x.inFlight[0].bytes > 0, { timeoutMs: 30_000, tries: 1500 });
  t.equal(held.inFlight.length, 1, 'one download for N clients');
  t.match(held.inFlight[0], { upstream: 'docker.io', repository: 'team/app', digest, size: layer.size, startedAt: ISO, followers: N });
  t.ok(held.inFlight[0]!.bytes <= 256 * 1024, 'progress is what arrived so far');
  t.equal(held.traffic.downloadsInFlight, 1);
  release();
  for (const res of await Promise.all(pulls)) t.equal(sha256(res.body), digest);
  await mirror.app.settled();

  const s = await until('every pull counted', () => status(mirror.url), (x) => x.traffic.bytesServed.upstream >= N * layer.size);
  const gets = reg.filter({ kind: 'blob', method: 'GET', pathIncludes: digest });
  t.equal(gets.length, 1, 'the upstream saw one GET');
  t.equal(s.traffic.bytesDownloaded, gets[0]!.bytesSent, 'downloaded: the bytes the upstream itself says it sent');
  t.equal(s.traffic.bytesDownloaded, layer.size);
  t.equal(s.traffic.bytesServed.upstream, N * layer.size, 'every client got the whole blob');
  t.equal(s.traffic.bytesSaved, (N - 1) * layer.size, 'the followers are bytes the upstream did not send');
  t.same(s.traffic.lookups.blob, { hit: 0, miss: 1, coalesced: N - 1, stale: 0, negative: 0 });
  t.same(s.inFlight, [], 'nothing in flight once committed');

  // A warm pull is saved whole; the charts' minutes add up to the same totals.
  t.equal(sha256((await request(`${mirror.url}/v2/team/app/blobs/${digest}`)).body), digest);
  const warm = await until('the warm pull counted', () => status(mirror.url), (x) => x.traffic.bytesServed.cache >= layer.size);
  t.equal(warm.traffic.bytesSaved, N * layer.size);
  t.equal(warm.traffic.hitRatio, 1 / (N + 1));
  const total = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  t.equal(warm.history.stepSeconds, 60);
  t.match(warm.history.from, ISO);
  t.equal(total(warm.history.series.bytesDownloaded), layer.size);
  t.equal(total(warm.history.series.bytesServed), (N + 1) * layer.size);
  t.equal(total(warm.history.series.lookups), N + 1);
  t.equal(total(warm.history.series.hits), 1);
  t.equal(total(warm.history.series.upstreamErrors), 0);
});

t.test('/api/images: each cached tag with its platforms, size, last pull, pin and how complete it is', async (t) => {
  const reg = await startTestRegistry(t);
  const amd = quickImage('images-amd64');
  const arm = quickImage('images-arm64', { architecture: 'arm64', variant: 'v8' });
  // An attestation manifest (platform unknown/unknown) names no platform anyone pulls.
  const attestation = quickImage('images-attestation', { os: 'unknown', architecture: 'unknown' });
  const index = buildIndex([amd, arm, attestation]);
  reg.pushIndex('team/multi', '1', index);
  // An artifact: its config is not an image config, so it has no platform.
  const artifactConfig = Buffer.from('not json');
  const artifactConfigDigest = reg.putBlob('team/artifact', artifactConfig);
  const artifact = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: ACCEPT, config: { mediaType: 'application/vnd.example.config', digest: artifactConfigDigest, size: artifactConfig.length }, layers: [] }));
  reg.putManifest('team/artifact', 'v1', artifact, ACCEPT);
  const single = quickImage('images-single');
  reg.pushImage('pinned/app', '2', single);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, pin: ['docker.io/pinned/**'] });
  const INDEX = 'application/vnd.oci.image.index.v1+json';
  // The index and the amd64 image in full; nothing of arm64 but what the index names.
  await request(`${mirror.url}/v2/team/multi/manifests/1`, { headers: { accept: `${INDEX}, ${ACCEPT}` } });
  await request(`${mirror.url}/v2/team/multi/manifests/${amd.manifestDigest}`, { headers: { accept: ACCEPT } });
  for (const b of [amd.config, ...amd.layers]) await request(`${mirror.url}/v2/team/multi/blobs/${b.digest}`);
  await request(`${mirror.url}/v2/team/artifact/manifests/v1`, { headers: { accept: ACCEPT } });
  await request(`${mirror.url}/v2/team/artifact/blobs/${artifactConfigDigest}`);
  await request(`${mirror.url}/v2/pinned/app/manifests/2`, { headers: { accept: ACCEPT } });
  for (const b of [single.config, ...single.layers]) await request(`${mirror.url}/v2/pinned/app/blobs/${b.digest}`);
  await mirror.app.settled();

  const res = await request(`${mirror.url}/api/images`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'application/json');
  const { images } = JSON.parse(res.body.toString()) as { images: { repository: string; tag: string; platforms: string[]; sizeBytes: number; lastPulled: string; pinned: boolean; blobs: { cached: number; referenced: number } }[] };
  t.same(images.map((i) => `${i.repository}:${i.tag}`), ['pinned/app:2', 'team/artifact:v1', 'team/multi:1'], 'sorted by name');
  const [pinned, other, multi] = images;
  t.match(other, { platforms: [], sizeBytes: artifact.length + artifactConfig.length, blobs: { cached: 2, referenced: 2 } });
  const imageBytes = (img: typeof single) => img.manifest.length + img.config.size + img.layers.reduce((n, l) => n + l.size, 0);
  t.match(pinned, { platforms: ['linux/amd64'], pinned: true, sizeBytes: imageBytes(single), lastPulled: ISO, blobs: { cached: 1 + 1 + single.layers.length, referenced: 1 + 1 + single.layers.length } });
  t.match(multi, { platforms: ['linux/amd64', 'linux/arm64/v8'], pinned: false, sizeBytes: imageBytes(amd) + index.manifest.length });
  t.equal(multi?.blobs.cached, 1 + 1 + 1 + amd.layers.length, 'the index and the whole amd64 image');
  t.equal(multi?.blobs.referenced, 1 + 1 + 1 + amd.layers.length + 2, 'the arm64 and attestation manifests are named but not here (their blobs are unknown until they are)');
});
