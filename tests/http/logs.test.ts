import t from 'tap';
import { buildImage, buildLayer, quickImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { MiB, pausedGet } from '../fixtures/cache.js';
import { accessLines, lineFor } from '../fixtures/access-log.js';
import { until } from '../fixtures/poll.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const CANARY = `canary-${Math.random().toString(36).slice(2)}-observability`;

t.test('one JSON access line per request, carrying the request id the client got', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('access-log');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const layer = img.layers[0]!;

  const manifest = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT, 'user-agent': 'containerd/1.6.20+unknown' } });
  const m = await lineFor(mirror.logs, manifest.headers['x-request-id']);
  t.match(m, { level: 'info', method: 'GET', route: 'manifest', upstream: 'docker.io', repository: 'team/app', reference: '1', status: 200, bytes: img.manifest.length });
  t.match(m, { client: '127.0.0.1', userAgent: 'containerd/1.6.20+unknown' }, 'who asked: the client address and its User-Agent');
  t.ok(Number.isInteger(m?.durationMs), `durations in whole milliseconds (${String(m?.durationMs)})`);

  const cold = await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  t.equal(sha256(cold.body), layer.digest);
  await mirror.app.settled();
  const warm = await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  t.match(await lineFor(mirror.logs, cold.headers['x-request-id']), { route: 'blob', reference: layer.digest, status: 200, bytes: layer.size, source: 'upstream' });
  t.match(await lineFor(mirror.logs, warm.headers['x-request-id']), { route: 'blob', reference: layer.digest, status: 200, bytes: layer.size, source: 'cache' });

  const missing = await request(`${mirror.url}/v2/team/app/manifests/nope`);
  t.match(await lineFor(mirror.logs, missing.headers['x-request-id']), { route: 'manifest', status: 404 });

  const ids = [manifest, cold, warm, missing].map((r) => r.headers['x-request-id']);
  t.equal(new Set(ids).size, 4, 'a fresh id per request');
  for (const id of ids) t.equal(accessLines(mirror.logs).filter((l) => l.requestId === id).length, 1, `exactly one line for ${String(id)}`);

  // Probes and scrapes are routine: logged at debug, not info.
  const probe = await request(`${mirror.url}/healthz`);
  t.match(await lineFor(mirror.logs, probe.headers['x-request-id']), { level: 'debug', route: 'healthz', status: 200 });
});

t.test('manifest lines say where the answer came from: upstream, cache, inflight, stale', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('manifest-source'));
  let clock = 0;
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '1m', now: () => clock });
  const sourceOf = async (res: { headers: Record<string, unknown> }) => (await lineFor(mirror.logs, res.headers['x-request-id']))?.source;
  const pull = () => request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });

  // Two cold pulls at once: the second joins the first's upstream fetch, held until both asked.
  let release!: () => void;
  reg.inject({ match: { kind: 'manifest', method: 'GET' }, type: 'pause-after', bytes: 0, release: new Promise<void>((r) => (release = r)), times: 1 });
  const [first, second] = [pull(), pull()];
  await until('both pulls missed the cache', async () => (await mirror.app.metrics.exposition()).body.includes('regmirror_cache_lookups_total{kind="manifest",outcome="miss"} 2'));
  release();
  t.same((await Promise.all([sourceOf(await first), sourceOf(await second)])).sort(), ['inflight', 'upstream']);
  t.equal(reg.count({ kind: 'manifest' }), 1, 'one upstream fetch');

  t.equal(await sourceOf(await pull()), 'cache', 'within the TTL');
  clock += 120_000;
  t.equal(await sourceOf(await pull()), 'cache', 'revalidated by HEAD: the same digest, from the cache');
  reg.pushImage('team/app', '1', quickImage('manifest-source-2'));
  clock += 120_000;
  t.equal(await sourceOf(await pull()), 'upstream', 'a new digest fetched');
  clock += 120_000;
  reg.inject({ match: { kind: 'manifest' }, type: 'status', status: 503 });
  t.equal(await sourceOf(await pull()), 'stale', 'upstream down: the stored record');
  t.match(await mirror.app.metrics.exposition(), { body: /regmirror_served_bytes_total\{source="upstream"\} 0\n/ }, 'manifest bytes are not counted as served blob bytes');
});

t.test('an access line duration spans the whole response, in milliseconds', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(2 * MiB, 'duration');
  const digest = reg.putBlob('team/app', layer.gz);
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 256 * 1024, release: new Promise<void>((r) => (release = r)), times: 1 });
  t.teardown(() => release());
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const get = await pausedGet(`${mirror.url}/v2/team/app/blobs/${digest}`);
  // The server saw the request before these first bytes and cannot end the response before the
  // upstream is released, so its duration is at least the time held here.
  const firstBytes = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const heldMs = performance.now() - firstBytes;
  release();
  t.equal(await get.finish(), digest);
  const line = await lineFor(mirror.logs, get.res.headers['x-request-id']);
  t.ok((line?.durationMs ?? 0) >= heldMs, `durationMs ${String(line?.durationMs)} covers the ${heldMs} ms the body was held`);
});

t.test('canary secret: the upstream password and tokens reach no log line, no metric, no status and no body', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY }, redirectBlobs: true, rateLimit: { limit: 10, remaining: 10 } });
  const img = buildImage({ layers: [buildLayer({ 'secret.txt': 'private' })] });
  reg.pushImage('private/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: CANARY } } });
  const bodies: string[] = [];
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${mirror.url}${path}`, { headers });
    bodies.push(res.body.toString('latin1'), JSON.stringify(res.headers));
    return res;
  };

  t.equal((await get('/v2/private/app/manifests/1', { accept: ACCEPT })).status, 200);
  t.equal(sha256((await get(`/v2/private/app/blobs/${img.layers[0]!.digest}`)).body), img.layers[0]!.digest);
  reg.expireTokens();
  await get(`/v2/private/app/manifests/${img.manifestDigest}`, { accept: ACCEPT });
  await get(`/v2/private/app/blobs/${img.config.digest}`);
  await get('/v2/private/app/tags/list');
  reg.inject({ match: { kind: 'manifest', pathIncludes: 'broken' }, type: 'status', status: 500 });
  await get('/v2/private/broken/manifests/1');
  await get('/v2/private/missing/manifests/1');
  await get(`/v2/private/app/blobs/sha256:${'2'.repeat(64)}`);
  await mirror.app.settled();
  const metrics = await get('/metrics');
  const status = await get('/api/status');
  const page = await get('/');
  t.equal(metrics.status, 200);
  t.equal(status.status, 200);
  t.equal(page.status, 200);

  const tokens = reg.requests.map((r) => /^Bearer (.+)$/.exec(r.headers.authorization ?? '')?.[1]).filter((x): x is string => x !== undefined);
  t.ok(tokens.length >= 2, `the upstream saw ${tokens.length} bearer tokens`);
  const secrets: [string, string][] = [
    [CANARY, 'the password'],
    [Buffer.from(`mirror:${CANARY}`).toString('base64'), 'the Basic credentials'],
    ...[...new Set(tokens)].map((tok, i): [string, string] => [tok, `token ${i + 1}`]),
  ];
  const logText = mirror.logs.join('\n');
  for (const [secret, label] of secrets) {
    t.notOk(logText.includes(secret), `no log line holds ${label}`);
    t.notOk(bodies.some((b) => b.includes(secret)), `no response (metrics, status, page, API) holds ${label}`);
  }
  const started = mirror.logs.map((l) => JSON.parse(l) as { msg: string; config?: { upstreams: Record<string, { password?: string }> } }).find((l) => l.msg === 'regmirror listening');
  t.equal(started?.config?.upstreams['docker.io']?.password, '[redacted]', 'start-up logs the effective config, secret redacted');
});

t.test('an anonymous upstream logs no password key at start-up (none is configured)', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const started = mirror.logs.map((l) => JSON.parse(l) as { msg: string; config?: { upstreams: Record<string, object> } }).find((l) => l.msg === 'regmirror listening');
  t.ok(started?.config?.upstreams['docker.io'], 'the upstream is in the logged config');
  t.notOk(started?.config?.upstreams['docker.io'] && 'password' in started.config.upstreams['docker.io'], 'no password key');
});
