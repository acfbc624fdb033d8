import t from 'tap';
import { connect } from 'node:net';
import { buildImage, buildLayer } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';

const ALL = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

t.test('upstream choice: default + library/, ?ns=, alias, path prefix', async (t) => {
  const hub = await startTestRegistry(t);
  const ghcr = await startTestRegistry(t);
  const hubImg = buildImage({ layers: [buildLayer({ 'f': 'hub' })] });
  const ghcrImg = buildImage({ layers: [buildLayer({ 'f': 'ghcr' })] });
  hub.pushImage('library/alpine', '3.20', hubImg);
  ghcr.pushImage('org/app', '1', ghcrImg);
  ghcr.pushImage('alpine', '3.20', ghcrImg);
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: hub.url }, 'ghcr.io': { url: ghcr.url, aliases: ['ghcr.alias'] } },
    defaultUpstream: 'docker.io',
  });
  const digestOf = async (path: string) => (await request(`${mirror.url}${path}`, { headers: { accept: ALL } })).headers['docker-content-digest'];

  t.equal(await digestOf('/v2/alpine/manifests/3.20'), hubImg.manifestDigest, 'one-segment name gets library/ on Docker Hub');
  t.equal(await digestOf('/v2/library/alpine/manifests/3.20?ns=docker.io'), hubImg.manifestDigest, 'containerd ?ns=');
  t.equal(await digestOf('/v2/alpine/manifests/3.20?ns=index.docker.io'), hubImg.manifestDigest, 'built-in docker.io alias');
  t.equal(await digestOf('/v2/org/app/manifests/1?ns=ghcr.io'), ghcrImg.manifestDigest);
  t.equal(await digestOf('/v2/org/app/manifests/1?ns=ghcr.alias'), ghcrImg.manifestDigest);
  t.equal(await digestOf('/v2/ghcr.io/org/app/manifests/1'), ghcrImg.manifestDigest, 'path prefix');
  t.equal(await digestOf('/v2/ghcr.io/alpine/manifests/3.20'), ghcrImg.manifestDigest, 'no library/ for other registries');
  t.ok(hub.requests.every((r) => !r.path.includes('ghcr')), 'the prefix is not sent upstream');

  const unknownNs = await request(`${mirror.url}/v2/org/app/manifests/1?ns=quay.io`);
  t.equal(unknownNs.status, 404, 'an unconfigured ns is never used as a host');
  t.equal(errorCode(unknownNs), 'NAME_UNKNOWN');
});

t.test('the read-only API answers push and delete with 405 UNSUPPORTED', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  for (const [method, path] of [
    ['POST', '/v2/team/app/blobs/uploads/'],
    ['PATCH', '/v2/team/app/blobs/uploads/abc'],
    ['PUT', '/v2/team/app/manifests/1'],
    ['DELETE', '/v2/team/app/manifests/1'],
    ['DELETE', `/v2/team/app/blobs/sha256:${'a'.repeat(64)}`],
    ['PUT', '/v2/Bad_Name/manifests/1'],
  ] as const) {
    const res = await request(`${mirror.url}${path}`, { method });
    t.equal(res.status, 405, `${method} ${path}`);
    t.equal(errorCode(res), 'UNSUPPORTED');
  }
  t.equal(reg.requests.length, 0, 'nothing reached upstream');
});

t.test('malformed input gets a 4xx OCI error and never reaches upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const cases: Array<[string, number, string]> = [
    ['/v2/Team/App/manifests/1', 400, 'NAME_INVALID'],
    ['/v2/team/../etc/manifests/1', 400, 'NAME_INVALID'],
    ['/v2/team/%2e%2e/manifests/1', 400, 'NAME_INVALID'],
    [`/v2/${'a'.repeat(300)}/manifests/1`, 400, 'NAME_INVALID'],
    // No manifest can be tagged so: 404, as for any manifest that does not exist.
    ['/v2/team/app/manifests/-bad', 404, 'MANIFEST_UNKNOWN'],
    ['/v2/team/app/manifests/.INVALID_MANIFEST_NAME', 404, 'MANIFEST_UNKNOWN'],
    [`/v2/team/app/manifests/${'t'.repeat(129)}`, 404, 'MANIFEST_UNKNOWN'],
    ['/v2/team/app/manifests/sha256:abc', 400, 'DIGEST_INVALID'],
    [`/v2/team/app/blobs/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    [`/v2/team/app/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
    ['/v2/team/app/blobs/latest', 400, 'DIGEST_INVALID'],
    ['/v2/team/app/tags/list?n=-1', 400, 'PAGINATION_NUMBER_INVALID'],
    ['/v2/team/app/tags/list?n=abc', 400, 'PAGINATION_NUMBER_INVALID'],
  ];
  for (const [path, status, code] of cases) {
    const res = await request(`${mirror.url}${path}`);
    t.equal(res.status, status, path);
    t.equal(errorCode(res), code, path);
    t.equal(res.headers['content-type'], 'application/json', path);
  }
  for (const path of ['/v2/nonsense', '/nothing-here', '/v2/nowhere.example/_catalog']) {
    const res = await request(`${mirror.url}${path}`);
    t.equal(res.status, 404, path);
    t.ok(errorCode(res), `${path} has an OCI error body`);
  }
  t.equal(reg.requests.length, 0, 'nothing reached upstream');
});

t.test('/v2/, health, and TLS garbage on the plain port', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const base = await request(`${mirror.url}/v2/`);
  t.equal(base.status, 200);
  t.equal(base.headers['docker-distribution-api-version'], 'registry/2.0');
  t.equal((await request(`${mirror.url}/v2`)).status, 200);
  t.equal((await request(`${mirror.url}/healthz`)).status, 200);

  // A TLS ClientHello, as podman and skopeo send first: answered with a clean close.
  const hello = Buffer.from('16030100a5010000a10303' + '00'.repeat(40), 'hex');
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(mirror.url).port), '127.0.0.1', () => socket.write(hello));
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
  t.match(answer, /^(HTTP\/1\.1 400|)/, 'a 400 or nothing, then close');
  t.equal((await request(`${mirror.url}/v2/`)).status, 200, 'still serving');
  t.notOk(mirror.logs.some((l) => l.includes('"level":"error"')), 'no error logged');
});

t.test('tags/list passes n, last and Link through, keeping the client routing', async (t) => {
  const reg = await startTestRegistry(t);
  const img = buildImage({ layers: [buildLayer({ 'f': 'tags' })] });
  for (const tag of ['a', 'b', 'c', 'd', 'e']) reg.pushImage('org/app', tag, img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url }, 'other.io': { url: reg.url, library: false } } });
  const page = await request(`${mirror.url}/v2/org/app/tags/list?n=2`);
  t.equal(page.status, 200);
  t.same(JSON.parse(page.body.toString()).tags, ['a', 'b']);
  t.match(page.headers.link, /^<\/v2\/org\/app\/tags\/list\?[^>]*last=b[^>]*>; rel="next"$/);
  t.match(page.headers.link, /n=2/);
  const nextUrl = /<([^>]+)>/.exec(String(page.headers.link))?.[1];
  const next = await request(`${mirror.url}${nextUrl}`);
  t.same(JSON.parse(next.body.toString()).tags, ['c', 'd']);

  const prefixed = await request(`${mirror.url}/v2/other.io/org/app/tags/list?n=4`);
  t.match(prefixed.headers.link, /^<\/v2\/other\.io\/org\/app\/tags\/list\?/, 'the prefix stays in the Link');
  const ns = await request(`${mirror.url}/v2/org/app/tags/list?n=4&ns=other.io`);
  t.match(ns.headers.link, /ns=other\.io/, 'the ns stays in the Link');
  const last = await request(`${mirror.url}/v2/org/app/tags/list?last=d`);
  t.same(JSON.parse(last.body.toString()).tags, ['e']);
  t.equal(last.headers.link, undefined);
  const unknown = await request(`${mirror.url}/v2/org/none/tags/list`);
  t.equal(unknown.status, 404);
  t.equal(errorCode(unknown), 'NAME_UNKNOWN');
});
