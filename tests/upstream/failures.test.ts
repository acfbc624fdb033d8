import { inspect } from 'node:util';
import t, { type Test } from 'tap';
import { FIRST_PAGE, parseDigest, parseReference, parseRepositoryName } from '../../src/oci/index.js';
import type { UpstreamFailure } from '../../src/upstream/index.js';
import { quickImage } from '../fixtures/images.js';
import { expectFailure as expectUpstreamFailure, testUpstream, type UpstreamOverrides } from '../fixtures/upstream.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';

const CANARY = `canary-${process.pid}-failures-c0ffee`;
const thrown: unknown[] = [];

function upstreamFor(t: Test, registry: TestRegistry, timeouts: UpstreamOverrides['timeouts'] = {}) {
  const { up, seen } = testUpstream(t, registry.url, { username: 'mirror', password: CANARY, timeouts });
  return { up, events: seen.requests };
}

const expectFailure = (t: Test, promise: Promise<unknown>, failure: UpstreamFailure) => expectUpstreamFailure(t, promise, failure, thrown);

const repo = parseRepositoryName('team/app');
const tag = parseReference('1.0');

/** A registry with Bearer auth (so tokens and the canary are in play) and one pushed image. */
async function setup(t: Test, options: Parameters<typeof startTestRegistry>[1] = {}) {
  const registry = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY }, ...options });
  const image = quickImage(`failures-${t.name}`);
  registry.pushImage('team/app', '1.0', image);
  return { registry, image };
}

t.test('404s carry the OCI code', async (t) => {
  const { registry } = await setup(t);
  const { up } = upstreamFor(t, registry);
  const noTag = await expectFailure(t, up.getManifest(repo, parseReference('nope'), []), 'not-found');
  t.equal(noTag?.details.ociCode, 'MANIFEST_UNKNOWN');
  t.equal(noTag?.details.status, 404);
  const noRepo = await expectFailure(t, up.listTags(parseRepositoryName('team/none'), FIRST_PAGE), 'not-found');
  t.equal(noRepo?.details.ociCode, 'NAME_UNKNOWN');
  const noBlob = await expectFailure(t, up.getBlob(repo, parseDigest(`sha256:${'b'.repeat(64)}`)), 'not-found');
  t.equal(noBlob?.details.ociCode, 'BLOB_UNKNOWN');
  await expectFailure(t, up.headBlob(repo, parseDigest(`sha256:${'c'.repeat(64)}`)), 'not-found');
  await expectFailure(t, up.headManifest(repo, parseReference('nope'), []), 'not-found');
});

t.test('403 is denied, 429 is rate-limited with Retry-After', async (t) => {
  const { registry } = await setup(t);
  const { up } = upstreamFor(t, registry);
  registry.inject({ match: { kind: 'manifest' }, type: 'status', status: 403, times: 1 });
  await expectFailure(t, up.getManifest(repo, tag, []), 'denied');
  registry.inject({ match: { kind: 'manifest' }, type: 'status', status: 429, retryAfter: 17, times: 1 });
  const limited = await expectFailure(t, up.getManifest(repo, tag, []), 'rate-limited');
  t.equal(limited?.details.retryAfter, 17);
  t.equal(limited?.details.status, 429);
});

t.test('5xx is retried once', async (t) => {
  const { registry, image } = await setup(t);
  const { up, events } = upstreamFor(t, registry);
  await up.headManifest(repo, tag, []); // learn the auth scheme first, so the counts below are plain
  registry.resetRequests();
  events.length = 0;

  registry.inject({ match: { kind: 'manifest' }, type: 'status', status: 503, times: 1 });
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest, 'the retry succeeded');
  t.same(
    events.map((e) => e.status),
    [503, 200],
    'a retried request counts as two',
  );

  registry.inject({ match: { kind: 'manifest' }, type: 'status', status: 502, times: 2 });
  const err = await expectFailure(t, up.getManifest(repo, tag, []), 'unavailable');
  t.equal(err?.details.status, 502);
  t.equal(registry.count({ kind: 'manifest' }), 4, 'two tries each, no more');
});

t.test('connection failures and timeouts are unavailable', async (t) => {
  const { registry, image } = await setup(t);
  const { up, events } = upstreamFor(t, registry, { headersMs: 300 });
  await up.headManifest(repo, tag, []);

  registry.inject({ match: { kind: 'manifest' }, type: 'reset', times: 1 });
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest, 'a reset connection is retried');

  registry.inject({ match: { kind: 'manifest' }, type: 'drop-after', bytes: 10, times: 1 });
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest, 'a manifest body cut short is fetched again');

  registry.resetRequests();
  const remove = registry.inject({ match: { kind: 'manifest' }, type: 'hang' });
  const hung = await expectFailure(t, up.getManifest(repo, tag, []), 'unavailable');
  t.match(hung?.message, /UND_ERR_HEADERS_TIMEOUT/);
  t.equal(registry.count({ kind: 'manifest' }), 2, 'retried once after the headers timeout');
  remove();

  await registry.stop();
  events.length = 0;
  const refused = await expectFailure(t, up.getManifest(repo, tag, []), 'unavailable');
  t.match(refused?.message, /ECONNREFUSED/);
  t.same(
    events.map((e) => e.status),
    ['error', 'error'],
  );
});

t.test('a body cut short after the blob was handed over errors the stream', async (t) => {
  const { registry, image } = await setup(t);
  const { up } = upstreamFor(t, registry);
  const layer = image.layers[0]!;
  registry.inject({ match: { kind: 'blob', method: 'GET' }, type: 'drop-after', bytes: 5, times: 1 });
  const res = await up.getBlob(repo, parseDigest(layer.digest));
  t.equal(res.contentLength, layer.size);
  await t.rejects(
    (async () => {
      for await (const _ of res.body) void _;
    })(),
  );
});

t.test('an aborted signal ends the request with the caller’s reason', async (t) => {
  const { registry, image } = await setup(t);
  const { up } = upstreamFor(t, registry);
  await up.headManifest(repo, tag, []);
  registry.inject({ match: { kind: 'blob' }, type: 'hang' });
  const controller = new AbortController();
  const pending = up.getBlob(repo, parseDigest(image.layers[0]!.digest), { signal: controller.signal });
  controller.abort(new Error('client went away'));
  await t.rejects(pending, { message: 'client went away' });
});

t.test('the canary password appears in nothing thrown', async (t) => {
  t.ok(thrown.length >= 10, `${thrown.length} errors collected`);
  const encoded = Buffer.from(`mirror:${CANARY}`).toString('base64');
  for (const err of thrown) {
    const text = `${String(err)}\n${inspect(err, { depth: 6 })}\n${JSON.stringify(err)}`;
    t.notOk(text.includes(CANARY) || text.includes(encoded), `clean: ${(err as Error).message}`);
  }
});
