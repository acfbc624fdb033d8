import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { inspect } from 'node:util';
import t, { type Test } from 'tap';
import { FIRST_PAGE, MANIFEST_MEDIA_TYPES, parseDigest, parseReference, parseRepositoryName } from '../../src/oci/index.js';
import type { UpstreamFailure } from '../../src/upstream/index.js';
import { buildIndex, quickImage, randomLayer, buildImage } from '../fixtures/images.js';
import { expectFailure as expectUpstreamFailure, testUpstream } from '../fixtures/upstream.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const CANARY = `canary-${process.pid}-transfer-51d0aa`;
const thrown: unknown[] = [];


const upstreamFor = testUpstream;

const expectFailure = (t: Test, promise: Promise<unknown>, failure: UpstreamFailure) => expectUpstreamFailure(t, promise, failure, thrown);

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const repo = parseRepositoryName('team/app');
const bearer = { kind: 'bearer', username: 'mirror', password: CANARY } as const;
const creds = { username: 'mirror', password: CANARY };

t.test('manifests by tag and digest, HEAD, Accept', async (t) => {
  const registry = await startTestRegistry(t, {});
  const amd = quickImage('amd64');
  const index = buildIndex([amd, quickImage('arm64', { architecture: 'arm64' })]);
  registry.pushIndex('team/app', 'multi', index);
  const { up } = upstreamFor(t, `${registry.url}/`);

  const byTag = await up.getManifest(repo, parseReference('multi'), []);
  t.same(byTag.bytes, index.manifest);
  t.equal(byTag.mediaType, index.mediaType);
  t.equal(byTag.digestHeader, index.manifestDigest);
  t.equal(registry.requests.at(-1)?.headers.accept, MANIFEST_MEDIA_TYPES.join(', '), 'empty Accept list → the modern set');
  t.equal(registry.requests.at(-1)?.path, '/v2/team/app/manifests/multi', 'no double slash from the trailing / in the url');
  t.equal(registry.requests.at(-1)?.headers['accept-encoding'], undefined, 'never asks for encoded bodies');

  const child = await up.getManifest(repo, parseReference(amd.manifestDigest), [amd.mediaType, 'bad\r\nheader']);
  t.same(child.bytes, amd.manifest);
  t.equal(registry.requests.at(-1)?.headers.accept, amd.mediaType, 'client Accept passed on, unusable entries dropped');

  const head = await up.headManifest(repo, parseReference('multi'), []);
  t.same(head, { digest: index.manifestDigest, mediaType: index.mediaType, size: index.manifest.length });
});

t.test('blobs: whole, ranged, HEAD, redirect without credentials', async (t) => {
  const registry = await startTestRegistry(t, { auth: bearer, redirectBlobs: true });
  const layer = randomLayer(200_000, 'transfer-blob');
  const image = buildImage({ layers: [layer] });
  registry.pushImage('team/app', '1.0', image);
  const { up } = upstreamFor(t, registry.url, creds);
  const digest = parseDigest(layer.digest);

  const whole = await up.getBlob(repo, digest);
  t.equal(whole.status, 200);
  t.equal(whole.contentLength, layer.size);
  t.same(await readAll(whole.body), layer.gz);

  const part = await up.getBlob(repo, digest, { range: { start: 1000, end: 1999 } });
  t.equal(part.status, 206);
  t.equal(part.contentLength, 1000);
  t.same(await readAll(part.body), layer.gz.subarray(1000, 2000));

  const tail = await up.getBlob(repo, digest, { range: { start: layer.size - 10 } });
  t.equal(tail.status, 206);
  t.same(await readAll(tail.body), layer.gz.subarray(layer.size - 10));

  t.same(await up.headBlob(repo, digest), { size: layer.size });

  const storage = registry.filter({ server: 'blobs' });
  t.equal(storage.length, 3, 'three GETs followed the redirect');
  t.same(
    storage.map((r) => r.headers.authorization),
    [undefined, undefined, undefined],
    'the storage host never sees a token',
  );
  t.match(registry.filter({ server: 'registry', kind: 'blob', method: 'GET' }).at(-1)?.headers.authorization, /^Bearer /);
});

t.test('storage failures do not leak the signed URL', async (t) => {
  const registry = await startTestRegistry(t, { auth: bearer, redirectBlobs: true });
  const image = quickImage('signed');
  registry.pushImage('team/app', '1.0', image);
  const { up } = upstreamFor(t, registry.url, creds);
  registry.inject({ match: { server: 'blobs' }, type: 'status', status: 404 });
  const err = await expectFailure(t, up.getBlob(repo, parseDigest(image.layers[0]!.digest)), 'not-found');
  const location = registry.filter({ server: 'blobs' })[0]?.url ?? '';
  const sig = new URLSearchParams(location.split('?')[1]).get('sig');
  t.ok(sig, 'the redirect carried a signature');
  t.notOk(inspect(err, { depth: 6 }).includes(sig ?? 'x'), 'no signature in the error');
  t.match(err?.message, /\/blobs\/sha256:[0-9a-f]{64}/, 'the path is still named');
});

t.test('HEAD without Content-Length falls back to a one-byte GET', async (t) => {
  const registry = await startTestRegistry(t, {});
  const image = quickImage('no-head-length');
  registry.pushImage('team/app', '1.0', image);
  registry.inject({ match: { method: 'HEAD' }, type: 'no-head-length' });
  const { up } = upstreamFor(t, registry.url);
  const layer = image.layers[1]!;
  t.same(await up.headBlob(repo, parseDigest(layer.digest)), { size: layer.size });
  const last = registry.requests.at(-1);
  t.equal(last?.method, 'GET');
  t.equal(last?.headers.range, 'bytes=0-0');
});

t.test('tags list keeps n, last and the Link header', async (t) => {
  const registry = await startTestRegistry(t, {});
  for (const tag of ['a', 'b', 'c', 'd']) registry.pushImage('team/app', tag, quickImage(`tag-${tag}`));
  const { up } = upstreamFor(t, registry.url);
  const page = await up.listTags(repo, { n: 2, last: 'a' });
  t.same(JSON.parse(page.body.toString()), { name: 'team/app', tags: ['b', 'c'] });
  t.equal(page.link, '</v2/team/app/tags/list?last=c&n=2>; rel="next"');
  t.equal(registry.requests.at(-1)?.query.get('n'), '2');
  t.equal(registry.requests.at(-1)?.query.get('last'), 'a');
  const all = await up.listTags(repo, FIRST_PAGE);
  t.equal(all.link, undefined);
});

t.test('observer: one event per exchange, rate limit remaining', async (t) => {
  const registry = await startTestRegistry(t, { auth: bearer, rateLimit: { limit: 100, remaining: 50 } });
  registry.pushImage('team/app', '1.0', quickImage('observed'));
  const { up, seen } = upstreamFor(t, registry.url, creds);
  const started = performance.now();
  await up.getManifest(repo, parseReference('1.0'), []);
  await up.headManifest(repo, parseReference('1.0'), []);
  const spanSeconds = (performance.now() - started) / 1000;
  t.same(
    seen.requests.map((e) => [e.upstream, e.method, e.status]),
    [
      ['test', 'GET', 401],
      ['test', 'GET', 200],
      ['test', 'GET', 200],
      ['test', 'HEAD', 200],
    ],
    'challenge, token, manifest, head',
  );
  // Each duration lies inside the span the calls took, which also pins the unit to seconds (a
  // duration in milliseconds would exceed the span); a loopback exchange still takes more than 0 s.
  for (const e of seen.requests) t.ok(e.seconds > 0 && e.seconds <= spanSeconds, `${e.method} ${e.status}: ${e.seconds} s within ${spanSeconds} s`);
  t.same(seen.remaining, [49, 49], 'GET counted one pull, HEAD is free');
});

t.test('Content-Encoding and oversized manifests are bad responses', async (t) => {
  const registry = await startTestRegistry(t, {});
  registry.putManifest('team/app', 'huge', Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), 'application/vnd.oci.image.manifest.v1+json');
  const { up } = upstreamFor(t, registry.url);
  await expectFailure(t, up.getManifest(repo, parseReference('huge'), []), 'bad-response');

  // The test registry never encodes; a bare server that does, for this one check.
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-encoding': 'gzip', 'content-length': 2 });
    res.end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const bare = upstreamFor(t, `http://127.0.0.1:${port}`).up;
  const err = await expectFailure(t, bare.getManifest(repo, parseReference('x'), []), 'bad-response');
  t.match(err?.message, /Content-Encoding/);
});

t.test('the canary password appears in nothing thrown', async (t) => {
  t.ok(thrown.length >= 3, `${thrown.length} errors collected`);
  const encoded = Buffer.from(`mirror:${CANARY}`).toString('base64');
  for (const err of thrown) {
    const text = `${String(err)}\n${inspect(err, { depth: 6 })}\n${JSON.stringify(err)}`;
    t.notOk(text.includes(CANARY) || text.includes(encoded), `clean: ${(err as Error).message}`);
  }
});
