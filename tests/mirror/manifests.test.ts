import t from 'tap';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { buildImage, buildIndex, buildLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import { isCached } from '../fixtures/cache.js';
import { storageLayout } from '../../src/storage/layout.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const ALL = [DOCKER_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json', OCI_INDEX, OCI_MANIFEST].join(', ');

function image(text: string, format: 'oci' | 'docker' = 'oci', architecture = 'amd64') {
  return buildImage({ layers: [buildLayer({ 'hello.txt': text })], format, architecture, os: 'linux' });
}

t.test('manifest by tag: exact bytes, headers, cached, HEAD answered locally', async (t) => {
  const reg = await startTestRegistry(t);
  const img = image('one', 'docker');
  reg.pushImage('team/app', '1.0.0', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });

  const res = await request(`${mirror.url}/v2/team/app/manifests/1.0.0`, { headers: { accept: ALL } });
  t.equal(res.status, 200);
  t.ok(res.body.equals(img.manifest), 'bytes are upstream bytes, not re-serialised');
  t.equal(res.headers['content-type'], DOCKER_MANIFEST);
  t.equal(res.headers['docker-content-digest'], img.manifestDigest);
  t.equal(res.headers['content-length'], String(img.manifest.length));
  t.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  t.equal(res.headers.etag, `"${img.manifestDigest}"`);
  t.ok(res.headers['x-request-id'], 'request id header');

  const head = await request(`${mirror.url}/v2/team/app/manifests/1.0.0`, { method: 'HEAD', headers: { accept: ALL } });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], String(img.manifest.length), 'HEAD has the GET body size');
  t.equal(head.headers['docker-content-digest'], img.manifestDigest);
  t.equal(head.body.length, 0);

  const byDigest = await request(`${mirror.url}/v2/team/app/manifests/${img.manifestDigest}`, { headers: { accept: ALL } });
  t.ok(byDigest.body.equals(img.manifest));
  t.equal(reg.count({ kind: 'manifest' }), 1, 'one upstream manifest request for GET, HEAD and GET by digest');

  const notModified = await request(`${mirror.url}/v2/team/app/manifests/1.0.0`, { headers: { accept: ALL, 'if-none-match': `"${img.manifestDigest}"` } });
  t.equal(notModified.status, 304);
});

t.test('manifest by digest: fetched once, verified, cached for good', async (t) => {
  const reg = await startTestRegistry(t);
  const img = image('two');
  reg.pushImage('team/app', undefined, img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const url = `${mirror.url}/v2/team/app/manifests/${img.manifestDigest}`;
  const first = await request(url, { headers: { accept: OCI_MANIFEST } });
  t.equal(first.status, 200);
  t.equal(first.headers['content-type'], OCI_MANIFEST);
  t.equal(sha256(first.body), img.manifestDigest);
  await reg.stop();
  const second = await request(url, { headers: { accept: OCI_MANIFEST } });
  t.equal(second.status, 200, 'served with the upstream down');
  t.ok(second.body.equals(img.manifest));
});

t.test('a manifest whose bytes do not match the digest is refused and not cached', async (t) => {
  const reg = await startTestRegistry(t);
  const img = image('three');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const remove = reg.inject({ match: { kind: 'manifest', method: 'GET' }, type: 'wrong-bytes' });
  const bad = await request(`${mirror.url}/v2/team/app/manifests/${img.manifestDigest}`, { headers: { accept: ALL } });
  t.equal(bad.status, 502);
  t.equal(errorCode(bad), 'UNAVAILABLE');
  remove();
  const good = await request(`${mirror.url}/v2/team/app/manifests/${img.manifestDigest}`, { headers: { accept: ALL } });
  t.equal(good.status, 200);
  t.ok(good.body.equals(img.manifest));
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 2, 'the bad answer was not cached');
});

t.test('a manifest pulled while storage cannot cache is served, recorded nowhere, and cached by the next pull', async (t) => {
  const reg = await startTestRegistry(t);
  const img = image('degraded');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  // Every new temp file fails (ENOTDIR): storage turns degraded and keeps nothing.
  const tmp = storageLayout(mirror.storage).tmpDir;
  rmSync(tmp, { recursive: true });
  writeFileSync(tmp, 'not a directory');
  const tagUrl = `${mirror.url}/v2/team/app/manifests/1`;
  const digestUrl = `${mirror.url}/v2/team/app/manifests/${img.manifestDigest}`;
  for (const url of [tagUrl, digestUrl]) {
    const res = await request(url, { headers: { accept: ALL } });
    t.equal(res.status, 200);
    t.ok(res.body.equals(img.manifest), 'upstream bytes');
    t.equal(res.headers['docker-content-digest'], img.manifestDigest);
  }
  t.notOk(isCached(mirror.storage, img.manifestDigest), 'nothing kept');
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 2, 'no record claimed the bytes: the digest pull asked upstream again');

  rmSync(tmp);
  mkdirSync(tmp);
  t.ok(await mirror.app.storageHealth.probe(), 'storage is writable again');
  t.equal((await request(tagUrl, { headers: { accept: ALL } })).status, 200);
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 3, 'the tag was not recorded either: asked upstream');
  t.ok(isCached(mirror.storage, img.manifestDigest), 'the next pull cached it');
  await reg.stop();
  for (const url of [tagUrl, digestUrl]) {
    const res = await request(url, { headers: { accept: ALL } });
    t.equal(res.status, 200, 'served with the upstream down');
    t.ok(res.body.equals(img.manifest));
  }
});

t.test('Accept decides: an index for clients that take one, passthrough for those that do not', async (t) => {
  const reg = await startTestRegistry(t);
  const amd = image('amd', 'oci', 'amd64');
  const arm = image('arm', 'oci', 'arm64');
  const index = buildIndex([amd, arm], 'oci');
  reg.pushIndex('team/multi', 'latest', index);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const idx = await request(`${mirror.url}/v2/team/multi/manifests/latest`, { headers: { accept: ALL } });
  t.equal(idx.headers['content-type'], OCI_INDEX);
  t.equal(idx.headers['docker-content-digest'], index.manifestDigest);
  const child = await request(`${mirror.url}/v2/team/multi/manifests/${arm.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(child.status, 200, 'children are fetched as the client asks for them');
  t.ok(child.body.equals(arm.manifest));
  // A client that cannot read an index must never be handed the cached one.
  const plain = await request(`${mirror.url}/v2/team/multi/manifests/latest`, { headers: { accept: OCI_MANIFEST } });
  t.not(plain.headers['content-type'], OCI_INDEX);
  t.equal(plain.status, 404, 'upstream has no non-index answer for this tag, and says so');
  t.equal(errorCode(plain), 'MANIFEST_UNKNOWN');
});

t.test('tag TTL: fresh from cache, then revalidated with HEAD; a new digest is fetched', async (t) => {
  const reg = await startTestRegistry(t);
  const v1 = image('v1');
  reg.pushImage('team/app', 'latest', v1);
  let clock = 1_000_000;
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '1m', now: () => clock });
  const url = `${mirror.url}/v2/team/app/manifests/latest`;
  t.equal((await request(url, { headers: { accept: ALL } })).headers['docker-content-digest'], v1.manifestDigest);
  clock += 30_000;
  await request(url, { headers: { accept: ALL } });
  t.equal(reg.count({ kind: 'manifest' }), 1, 'within the TTL upstream is not asked');

  clock += 60_000;
  await request(url, { headers: { accept: ALL } });
  t.equal(reg.count({ kind: 'manifest', method: 'HEAD' }), 1, 'after the TTL one HEAD revalidates');
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 1, 'same digest: nothing downloaded again');

  const v2 = image('v2');
  reg.pushImage('team/app', 'latest', v2);
  clock += 61_000;
  const changed = await request(url, { headers: { accept: ALL } });
  t.equal(changed.headers['docker-content-digest'], v2.manifestDigest);
  t.ok(changed.body.equals(v2.manifest));
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 2, 'the changed manifest was downloaded once');
  clock += 1000;
  await request(url, { headers: { accept: ALL } });
  t.equal(reg.count({ kind: 'manifest' }), 4, 'and is fresh again');
});

t.test('stale tags are served when upstream is down, 5xx or 429; uncached content is a clear 503', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', image('stale'));
  let clock = 0;
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '1s', now: () => clock });
  const url = `${mirror.url}/v2/team/app/manifests/1`;
  t.equal((await request(url, { headers: { accept: ALL } })).status, 200);

  for (const status of [503, 429]) {
    clock += 5000;
    const remove = reg.inject({ match: { kind: 'manifest' }, type: 'status', status, retryAfter: 1 });
    const res = await request(url, { headers: { accept: ALL } });
    t.equal(res.status, 200, `stale copy served on upstream ${status}`);
    remove();
  }
  t.ok(mirror.logs.some((l) => l.includes('serving the cached manifest')), 'a warning is logged');

  await reg.stop();
  clock += 5000;
  t.equal((await request(url, { headers: { accept: ALL } })).status, 200, 'stale copy served with upstream down');
  const missing = await request(`${mirror.url}/v2/team/other/manifests/1`, { headers: { accept: ALL } });
  t.equal(missing.status, 503);
  t.equal(errorCode(missing), 'UNAVAILABLE');
  t.match(JSON.parse(missing.body.toString()).errors[0].message, /unreachable/);
});

t.test('a hanging upstream times out into an error, never a hang', async (t) => {
  const reg = await startTestRegistry(t);
  reg.inject({ match: { kind: 'manifest' }, type: 'hang' });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, timeouts: { headers: '300ms' } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ALL } });
  t.equal(res.status, 503);
});

t.test('upstream errors map to OCI errors', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', image('errors'));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const unknownTag = await request(`${mirror.url}/v2/team/app/manifests/nope`, { headers: { accept: ALL } });
  t.equal(unknownTag.status, 404);
  t.equal(errorCode(unknownTag), 'MANIFEST_UNKNOWN');
  const unknownRepo = await request(`${mirror.url}/v2/team/nope/manifests/1`, { headers: { accept: ALL } });
  t.equal(unknownRepo.status, 404);
  t.match(errorCode(unknownRepo), /NAME_UNKNOWN|MANIFEST_UNKNOWN/);
  reg.inject({ match: { pathIncludes: 'denied' }, type: 'status', status: 403 });
  t.equal(errorCode(await request(`${mirror.url}/v2/team/denied/manifests/1`)), 'DENIED');
  reg.inject({ match: { pathIncludes: 'limited' }, type: 'status', status: 429, retryAfter: 42 });
  const limited = await request(`${mirror.url}/v2/team/limited/manifests/1`);
  t.equal(limited.status, 429);
  t.equal(errorCode(limited), 'TOOMANYREQUESTS');
  t.equal(limited.headers['retry-after'], '42');
});
