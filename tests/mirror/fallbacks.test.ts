import t, { type Test } from 'tap';
import type { StatusSnapshot } from '../../src/observability/index.js';
import { quickImage, randomLayer, sha256, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';

// upstreams.<name>.endpoints through the whole server: a bad mirror endpoint, what an operator sees,
// and regmirror chained behind regmirror (a DMZ mirror in front of an inner one).

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };

async function status(mirror: TestMirror): Promise<StatusSnapshot> {
  return JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as StatusSnapshot;
}

async function metric(mirror: TestMirror, name: string, endpoint: string): Promise<number | undefined> {
  const text = (await request(`${mirror.url}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`endpoint="${endpoint}"`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

/** Manifest by tag and every blob, each checked against its digest. */
async function pull(t: Test, url: string, name: string, tag: string, image: Image): Promise<void> {
  const m = await request(`${url}/v2/${name}/manifests/${tag}`, { headers: ACCEPT });
  t.equal(m.status, 200, `manifest ${name}:${tag}`);
  t.equal(sha256(m.body), image.manifestDigest);
  for (const blob of [image.config, ...image.layers]) {
    const b = await request(`${url}/v2/${name}/blobs/${blob.digest}`);
    t.equal(b.status, 200);
    t.equal(sha256(b.body), blob.digest, `blob ${blob.digest.slice(0, 19)}`);
  }
}

t.test('an endpoint sending wrong blob bytes: no client gets them whole, nothing is cached, the next endpoint serves', async (t) => {
  const [bad, origin] = await Promise.all([startTestRegistry(t), startTestRegistry(t)]);
  const image = quickImage('fallback-wrong-bytes');
  for (const r of [bad, origin]) r.pushImage('team/app', '1', image);
  bad.inject({ match: { kind: 'blob', method: 'GET' }, type: 'wrong-bytes' });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { endpoints: [bad.url, origin.url], endpointCooldown: '1h' } } });
  const small = image.config;

  // A small blob is checked before the answer starts: a clean OCI error.
  const first = await request(`${mirror.url}/v2/team/app/blobs/${small.digest}`);
  t.equal(first.status, 502);
  t.equal(errorCode(first), 'UNAVAILABLE');
  t.equal(origin.count({ kind: 'blob' }), 0, 'the origin was not needed to find out');

  const s = await status(mirror);
  const [mirrorEndpoint, originEndpoint] = s.upstreams[0]?.endpoints ?? [];
  t.match(mirrorEndpoint, { url: bad.url, state: 'cooling', until: /^\d{4}-/, lastError: { cause: `sent a blob body that does not match ${small.digest}` } });
  t.match(originEndpoint, { url: origin.url, state: 'up', until: null, lastError: null });
  t.equal(await metric(mirror, 'regmirror_upstream_endpoint_up', bad.url), 0);
  t.equal(await metric(mirror, 'regmirror_upstream_endpoint_up', origin.url), 1);
  t.equal(await metric(mirror, 'regmirror_upstream_endpoint_failures_total', bad.url), 1);

  const second = await request(`${mirror.url}/v2/team/app/blobs/${small.digest}`);
  t.equal(sha256(second.body), small.digest, 'the next request was served by the origin');
  t.equal(bad.count({ kind: 'blob' }), 1, 'the bad endpoint was not asked again');
  origin.resetRequests();
  const warm = await request(`${mirror.url}/v2/team/app/blobs/${small.digest}`);
  t.equal(sha256(warm.body), small.digest);
  t.equal(origin.count({ kind: 'blob' }), 0, 'and it was cached only then');
});

t.test('a big blob of wrong bytes from the only endpoint left: cut short, never a clean end, nothing cached', async (t) => {
  const [bad, origin] = await Promise.all([startTestRegistry(t), startTestRegistry(t)]);
  const big = randomLayer(1024 * 1024, 'fallback-wrong-big');
  const digest = bad.putBlob('team/app', big.gz);
  origin.putBlob('team/app', big.gz);
  bad.inject({ match: { kind: 'blob', method: 'GET' }, type: 'wrong-bytes' });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { endpoints: [bad.url, origin.url] } } });
  const cut = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.equal(cut.complete, false, 'the body was cut short: the client cannot take it for the blob');
  t.notOk(sha256(cut.body) === digest);
  const good = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.equal(sha256(good.body), digest, 'the origin served the next request');
  t.equal(bad.count({ kind: 'blob' }), 1);
});

t.test('all endpoints failing: a clean OCI error, and each endpoint shown with its cause', async (t) => {
  const [a, b] = await Promise.all([startTestRegistry(t), startTestRegistry(t)]);
  await a.stop();
  b.inject({ match: { kind: 'manifest' }, type: 'status', status: 503 });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { endpoints: [a.url, b.url], endpointCooldown: '1h' } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: ACCEPT });
  t.equal(res.status, 503);
  t.equal(errorCode(res), 'UNAVAILABLE');
  const endpoints = (await status(mirror)).upstreams[0]?.endpoints ?? [];
  t.same(endpoints.map((e) => e.state), ['cooling', 'cooling']);
  t.match(endpoints[0]?.lastError?.cause, /^ECONNREFUSED connecting to /);
  t.match(endpoints[1]?.lastError?.cause, /^HTTP 503 from /);
  t.equal(await metric(mirror, 'regmirror_upstream_endpoint_up', a.url), 0);
  const lines = mirror.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'upstream endpoint failed; cooling off while the next one serves');
  t.same(
    lines.map((l) => [l['level'], l['upstream'], l['endpoint']]),
    [
      ['warn', 'docker.io', a.url],
      ['warn', 'docker.io', b.url],
    ],
    'one warn line per endpoint that started cooling off',
  );
  t.match(lines[0]?.['cause'], /^ECONNREFUSED/);
  t.match(lines[0]?.['until'], /^\d{4}-/);

  // Both cooling: the one that failed first is asked, and an answer (here: not found) brings it back.
  await a.restart();
  const again = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: ACCEPT });
  t.equal(again.status, 404);
  t.same((await status(mirror)).upstreams[0]?.endpoints.map((e) => e.state), ['up', 'cooling']);
  t.ok(mirror.logs.some((l) => l.includes('upstream endpoint answers again') && l.includes(a.url)));
});

t.test('regmirror behind regmirror: pulled through the inner one cold and warm, then served with the outer gone', async (t) => {
  const reg = await startTestRegistry(t);
  const app = quickImage('chain-app');
  const alpine = quickImage('chain-alpine');
  reg.pushImage('team/app', '1', app);
  reg.pushImage('library/alpine', '3', alpine);
  // The DMZ mirror reaches the registry; the inner one reaches only the DMZ mirror, as its default upstream.
  const outer = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const inner = await startMirror(t, { upstreams: { 'docker.io': { url: outer.url } } });

  await pull(t, inner.url, 'team/app', '1', app);
  await pull(t, inner.url, 'alpine', '3', alpine);
  t.equal(reg.count({ kind: 'manifest', repo: 'library/alpine' }) > 0, true, 'library/ applied once, by the inner mirror, and kept by the outer');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 2 * (1 + app.layers.length), 'each blob fetched from the registry once');

  await pull(t, outer.url, 'team/app', '1', app);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 2 * (1 + app.layers.length), 'the outer mirror had cached them on the way');

  await outer.close();
  reg.resetRequests();
  await pull(t, inner.url, 'team/app', '1', app);
  await pull(t, inner.url, 'alpine', '3', alpine);
  t.equal(reg.requests.length, 0, 'warm, with the outer mirror stopped: all from the inner cache');
});

t.test('the DMZ mirror as first endpoint, the registry second: the outer stopped, the inner falls back', async (t) => {
  const reg = await startTestRegistry(t);
  const before = quickImage('chain-before');
  const after = quickImage('chain-after');
  reg.pushImage('team/app', '1', before);
  reg.pushImage('team/app', '2', after);
  const outer = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const inner = await startMirror(t, { upstreams: { 'docker.io': { endpoints: [outer.url, reg.url] } } });

  await pull(t, inner.url, 'team/app', '1', before);
  t.same((await status(inner)).upstreams[0]?.endpoints.map((e) => e.state), ['up', 'up'], 'served through the outer mirror');

  await outer.close();
  await pull(t, inner.url, 'team/app', '2', after);
  const endpoints = (await status(inner)).upstreams[0]?.endpoints ?? [];
  t.same(endpoints.map((e) => [e.url, e.state]), [
    [outer.url, 'cooling'],
    [reg.url, 'up'],
  ]);
  t.ok(inner.logs.some((l) => l.includes('cooling off while the next one serves') && l.includes(outer.url)), 'the inner mirror says so in its log');
});
