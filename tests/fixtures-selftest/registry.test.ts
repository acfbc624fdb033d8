import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import t from 'tap';
import { buildIndex, MediaTypes, quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const sha = (b: ArrayBuffer | Buffer): string => `sha256:${createHash('sha256').update(Buffer.from(b as ArrayBuffer)).digest('hex')}`;
const ALL_TYPES = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerList].join(', ');
const errorCode = async (res: Response): Promise<string | undefined> =>
  ((await res.json()) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;

t.test('base, manifests by tag and digest, blobs', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('one');
  t.equal(reg.pushImage('team/app', '1.0', img), img.manifestDigest);
  t.match(reg.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.equal(reg.host, reg.url.slice('http://'.length));

  const base = await fetch(`${reg.url}/v2/`);
  t.equal(base.status, 200);
  t.equal(base.headers.get('docker-distribution-api-version'), 'registry/2.0');
  t.equal(await base.text(), '{}');

  const byTag = await fetch(`${reg.url}/v2/team/app/manifests/1.0`, { headers: { accept: ALL_TYPES } });
  t.equal(byTag.status, 200);
  t.equal(byTag.headers.get('content-type'), MediaTypes.ociManifest);
  t.equal(byTag.headers.get('docker-content-digest'), img.manifestDigest);
  t.equal(byTag.headers.get('etag'), `"${img.manifestDigest}"`);
  t.equal(byTag.headers.get('docker-distribution-api-version'), 'registry/2.0');
  t.equal(sha(await byTag.arrayBuffer()), img.manifestDigest, 'exact bytes');

  const head = await fetch(`${reg.url}/v2/team/app/manifests/1.0`, { method: 'HEAD', headers: { accept: ALL_TYPES } });
  t.equal(head.headers.get('content-length'), String(img.manifest.length));
  t.equal(head.headers.get('docker-content-digest'), img.manifestDigest);

  const byDigest = await fetch(`${reg.url}/v2/team/app/manifests/${img.manifestDigest}`);
  t.equal(sha(await byDigest.arrayBuffer()), img.manifestDigest);
  const notModified = await fetch(`${reg.url}/v2/team/app/manifests/1.0`, { headers: { 'if-none-match': `"${img.manifestDigest}"` } });
  t.equal(notModified.status, 304);

  for (const blob of [img.config.bytes, ...img.layers.map((l) => l.gz)]) {
    const res = await fetch(`${reg.url}/v2/team/app/blobs/${sha(blob)}`);
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'application/octet-stream');
    t.equal(res.headers.get('docker-content-digest'), sha(blob));
    t.equal(res.headers.get('accept-ranges'), 'bytes');
    t.equal(sha(await res.arrayBuffer()), sha(blob));
  }
  const blobHead = await fetch(`${reg.url}/v2/team/app/blobs/${img.config.digest}`, { method: 'HEAD' });
  t.equal(blobHead.headers.get('content-length'), String(img.config.size));

  t.equal(reg.count({ kind: 'manifest' }), 4);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 3);
  t.equal(reg.count({ kind: 'base' }), 1);
  t.equal(reg.count({ pathIncludes: img.config.digest }), 2);
  t.ok(reg.requests.every((r) => r.server === 'registry' && r.completed));
  t.equal(reg.filter({ method: 'GET', kind: 'manifest' })[0]?.bytesSent, img.manifest.length);
  reg.resetRequests();
  t.equal(reg.requests.length, 0);
});

t.test('errors: unknown repo, tag, blob; bad input; read-only', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', 'v1', quickImage('err'));
  const get = (path: string, init?: RequestInit): Promise<Response> => fetch(`${reg.url}${path}`, init);
  const zero = `sha256:${'0'.repeat(64)}`;
  let res = await get('/v2/team/nope/manifests/v1');
  t.equal(res.status, 404);
  t.equal(await errorCode(res), 'NAME_UNKNOWN');
  res = await get('/v2/team/app/manifests/v2');
  t.equal(res.status, 404);
  t.equal(await errorCode(res), 'MANIFEST_UNKNOWN');
  res = await get(`/v2/team/app/blobs/${zero}`);
  t.equal(res.status, 404);
  t.equal(await errorCode(res), 'BLOB_UNKNOWN');
  res = await get('/v2/Team/App/manifests/v1');
  t.equal(res.status, 400);
  t.equal(await errorCode(res), 'NAME_INVALID');
  res = await get('/v2/team/app/blobs/sha256:XYZ');
  t.equal(res.status, 400);
  t.equal(await errorCode(res), 'DIGEST_INVALID');
  res = await get('/v2/team/app/manifests/v1', { method: 'PUT', body: '{}' });
  t.equal(res.status, 405);
  t.equal(await errorCode(res), 'UNSUPPORTED');
  res = await get('/v2/team/app/referrers/' + zero);
  t.equal(res.status, 404, 'no referrers API, like distribution v3');
  await res.arrayBuffer();
  res = await get('/v2/team/app/blobs/uploads/', { method: 'POST' });
  t.equal(res.status, 405);
  await res.arrayBuffer();

  // A TLS ClientHello on the plain port (podman, skopeo) gets a clean close, and the server lives on.
  await new Promise<void>((resolve) => {
    const socket = connect(Number(new URL(reg.url).port), '127.0.0.1', () => {
      socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    });
    socket.on('data', () => {});
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
  t.equal((await get('/v2/')).status, 200);

  const hub = await startTestRegistry(t, { unknownRepoIs401: true });
  res = await fetch(`${hub.url}/v2/library/nope/manifests/latest`);
  t.equal(res.status, 401);
  t.match(res.headers.get('www-authenticate'), /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="test-registry",scope="repository:library\/nope:pull"$/);
  await res.arrayBuffer();
});

t.test('index: children, Accept negotiation', async (t) => {
  const reg = await startTestRegistry(t);
  const amd = quickImage('idx', { architecture: 'amd64' });
  const arm = quickImage('idx', { architecture: 'arm64', variant: 'v8' });
  const index = buildIndex([amd, arm]);
  t.equal(reg.pushIndex('library/multi', '1', index), index.manifestDigest);

  const res = await fetch(`${reg.url}/v2/library/multi/manifests/1`, { headers: { accept: ALL_TYPES } });
  t.equal(res.headers.get('content-type'), MediaTypes.ociIndex);
  t.equal(sha(await res.arrayBuffer()), index.manifestDigest);
  for (const child of [amd, arm]) {
    const c = await fetch(`${reg.url}/v2/library/multi/manifests/${child.manifestDigest}`, { headers: { accept: child.mediaType } });
    t.equal(sha(await c.arrayBuffer()), child.manifestDigest);
    const layer = await fetch(`${reg.url}/v2/library/multi/blobs/${child.layers[0]?.digest}`);
    t.equal(layer.status, 200);
    await layer.arrayBuffer();
  }
  // distribution refuses an index to a client that does not list an index type, even with */*.
  const refused = await fetch(`${reg.url}/v2/library/multi/manifests/1`, { headers: { accept: `${MediaTypes.ociManifest}, */*` } });
  t.equal(refused.status, 404);
  t.equal(await errorCode(refused), 'MANIFEST_UNKNOWN');
  // Separate Accept lines (as dockerd sends them) count too.
  const lines = new Headers();
  lines.append('accept', MediaTypes.dockerManifest);
  lines.append('accept', MediaTypes.dockerList);
  t.equal((await fetch(`${reg.url}/v2/library/multi/manifests/1`, { method: 'HEAD', headers: lines })).status, 200);

  const docker = buildIndex([quickImage('d', { format: 'docker' })], 'docker');
  reg.pushIndex('library/multi', 'docker', docker);
  const list = await fetch(`${reg.url}/v2/library/multi/manifests/docker`, { headers: { accept: MediaTypes.dockerList } });
  t.equal(list.headers.get('content-type'), MediaTypes.dockerList);
  t.equal(sha(await list.arrayBuffer()), docker.manifestDigest);
});

t.test('Range on blobs', async (t) => {
  const reg = await startTestRegistry(t);
  const blob = Buffer.from('0123456789');
  const digest = reg.putBlob('r/b', blob);
  const range = async (value: string): Promise<[number, string | null, string]> => {
    const res = await fetch(`${reg.url}/v2/r/b/blobs/${digest}`, { headers: { range: value } });
    return [res.status, res.headers.get('content-range'), await res.text()];
  };
  t.same(await range('bytes=2-4'), [206, 'bytes 2-4/10', '234']);
  t.same(await range('bytes=7-'), [206, 'bytes 7-9/10', '789']);
  t.same(await range('bytes=-3'), [206, 'bytes 7-9/10', '789']);
  t.same(await range('bytes=8-100'), [206, 'bytes 8-9/10', '89']);
  t.same(await range('bytes=0-0'), [206, 'bytes 0-0/10', '0']);
  const [status, contentRange] = await range('bytes=10-');
  t.same([status, contentRange], [416, 'bytes */10']);
  t.same(await range('bytes=0-1,4-5'), [200, null, '0123456789'], 'multi-range ignored');
});

t.test('tags/list pagination', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('tags');
  for (const tag of ['b', 'a', 'd', 'c', 'e']) reg.pushImage('p/q', tag, img);
  const list = async (query: string): Promise<[string[], string | null]> => {
    const res = await fetch(`${reg.url}/v2/p/q/tags/list${query}`);
    const body = (await res.json()) as { name: string; tags: string[] };
    t.equal(body.name, 'p/q');
    return [body.tags, res.headers.get('link')];
  };
  t.same(await list(''), [['a', 'b', 'c', 'd', 'e'], null]);
  t.same(await list('?n=2'), [['a', 'b'], '</v2/p/q/tags/list?last=b&n=2>; rel="next"']);
  t.same(await list('?n=2&last=b'), [['c', 'd'], '</v2/p/q/tags/list?last=d&n=2>; rel="next"']);
  t.same(await list('?n=2&last=d'), [['e'], null]);
  t.same(await list('?n=0'), [[], null]);
  t.same(await list('?last=c'), [['d', 'e'], null]);
  const bad = await fetch(`${reg.url}/v2/p/q/tags/list?n=-1`);
  t.equal(bad.status, 400);
  await bad.arrayBuffer();
  reg.deleteTag('p/q', 'e');
  t.same(await list(''), [['a', 'b', 'c', 'd'], null]);
});

t.test('stop() refuses connections; restart() serves again; close() is idempotent', async (t) => {
  const reg = await startTestRegistry(t);
  await reg.stop();
  await t.rejects(fetch(`${reg.url}/v2/`));
  await reg.restart();
  t.equal((await fetch(`${reg.url}/v2/`)).status, 200);
  await reg.close();
  await reg.close();
  await t.rejects(fetch(`${reg.url}/v2/`));
});
