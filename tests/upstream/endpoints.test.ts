import t, { type Test } from 'tap';
import type { UpstreamConfig } from '../../src/config/index.js';
import { FIRST_PAGE, parseDigest, parseReference, parseRepositoryName } from '../../src/oci/index.js';
import { createUpstream, UpstreamError, type EndpointReport, type Upstream } from '../../src/upstream/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { FakeTimers } from '../fixtures/fake-timers.js';
import { startTestRegistry, type TestRegistry, type TestRegistryOptions } from '../fixtures/test-registry.js';
import { testUpstreamConfig } from '../fixtures/upstream.js';

const repo = parseRepositoryName('team/app');
const tag = parseReference('1.0');
const COOLDOWN_MS = 30_000;

interface World {
  readonly up: Upstream;
  readonly clock: FakeTimers;
  /** The last report per endpoint index. */
  readonly states: Map<number, EndpointReport>;
  readonly image: ReturnType<typeof quickImage>;
}

/** Registries each holding the same image (unless `without` lists them), behind one upstream whose endpoints they are, in order. */
async function registries(t: Test, n: number, options: TestRegistryOptions = {}): Promise<TestRegistry[]> {
  return Promise.all(Array.from({ length: n }, () => startTestRegistry(t, options)));
}

function fallback(t: Test, endpoints: readonly TestRegistry[], image: ReturnType<typeof quickImage>, overrides: Partial<UpstreamConfig> = {}): World {
  const clock = new FakeTimers();
  const states = new Map<number, EndpointReport>();
  const urls = endpoints.map((r) => new URL(r.url));
  const config = testUpstreamConfig(urls[urls.length - 1]!, { endpoints: urls, endpointCooldownMs: COOLDOWN_MS, ...overrides });
  const up = createUpstream(config, {
    observer: { upstreamRequest: () => {}, rateLimitRemaining: () => {}, endpointState: (r) => states.set(r.index, r) },
    now: () => clock.now(),
  });
  t.teardown(() => up.close());
  return { up, clock, states, image };
}

async function world(t: Test, n = 2, options: TestRegistryOptions = {}) {
  const regs = await registries(t, n, options);
  const image = quickImage(`endpoints-${t.name.slice(0, 40)}`);
  for (const r of regs) r.pushImage('team/app', '1.0', image);
  return { regs, ...fallback(t, regs, image) };
}

const manifests = (r: TestRegistry) => r.count({ kind: 'manifest' });
const cooling = (w: World, i: number) => {
  const s = w.states.get(i);
  return s?.coolingUntil !== undefined && s.coolingUntil > w.clock.now();
};

t.test('endpoints are asked in order: the first serves while it answers', async (t) => {
  const { regs, up, image, states } = await world(t, 3);
  const m = await up.getManifest(repo, tag, []);
  t.same(m.bytes, image.manifest);
  t.same(regs.map(manifests), [1, 0, 0]);
  t.same([...states.values()].map((s) => [s.index, s.endpoint, s.coolingUntil]), regs.map((r, i) => [i, r.url, undefined]), 'every endpoint reported up at start, url as configured');
});

for (const [what, inject] of [
  ['503', (r: TestRegistry) => r.inject({ match: { kind: 'manifest' }, type: 'status', status: 503 })],
  ['a reset connection', (r: TestRegistry) => r.inject({ match: { kind: 'manifest' }, type: 'reset' })],
  ['a refused connection', (r: TestRegistry) => r.stop()],
] as const) {
  t.test(`${what} from the first endpoint: the next serves, and the first cools off for endpointCooldown`, async (t) => {
    const w = await world(t);
    const [a, b] = w.regs as [TestRegistry, TestRegistry];
    await inject(a);
    const m = await w.up.getManifest(repo, tag, []);
    t.same(m.bytes, w.image.manifest, 'served by the second');
    t.equal(manifests(b), 1);
    t.ok(cooling(w, 0), 'the first is cooling');
    t.equal(w.states.get(0)?.coolingUntil, w.clock.now() + COOLDOWN_MS);
    t.ok(w.states.get(0)?.lastError?.cause, 'with the cause');
    t.notOk(cooling(w, 1));

    const askedA = manifests(a);
    await w.up.headManifest(repo, tag, []);
    await w.up.getManifest(repo, tag, []);
    t.equal(manifests(a), askedA, 'not asked while cooling');
    t.equal(manifests(b), 3);

    a.clearFaults();
    if (what === 'a refused connection') await a.restart();
    w.clock.advance(COOLDOWN_MS);
    await w.up.getManifest(repo, tag, []);
    t.equal(manifests(a), askedA + 1, 'asked first again once the cooldown is over');
    t.equal(manifests(b), 3);
    t.notOk(cooling(w, 0));
  });
}

t.test('429: cools off until Retry-After when that is longer than the cooldown', async (t) => {
  const w = await world(t);
  w.regs[0]!.inject({ match: { kind: 'manifest' }, type: 'status', status: 429, retryAfter: 120 });
  await w.up.getManifest(repo, tag, []);
  t.equal(w.states.get(0)?.coolingUntil, w.clock.now() + 120_000);
  w.clock.advance(COOLDOWN_MS);
  t.ok(cooling(w, 0), 'still cooling after the configured cooldown');
});

t.test('every endpoint cooling: the one that failed longest ago is tried, not a failure without asking', async (t) => {
  const w = await world(t);
  const [a, b] = w.regs as [TestRegistry, TestRegistry];
  a.inject({ match: { kind: 'manifest' }, type: 'status', status: 502 });
  b.inject({ match: { kind: 'manifest' }, type: 'status', status: 502 });
  const err = await w.up.getManifest(repo, tag, []).catch((e: unknown) => e);
  t.type(err, UpstreamError);
  t.equal((err as UpstreamError).failure, 'unavailable', 'a clean upstream failure when all fail');
  t.ok(cooling(w, 0) && cooling(w, 1));
  a.clearFaults();
  b.clearFaults();
  w.clock.advance(1000);
  const [askedA, askedB] = [manifests(a), manifests(b)];
  t.same((await w.up.getManifest(repo, tag, [])).bytes, w.image.manifest);
  t.same([manifests(a) - askedA, manifests(b) - askedB], [1, 0], 'only the least recently failed one was asked');
  t.notOk(cooling(w, 0), 'and it is up again after answering');
  t.ok(cooling(w, 1));
});

t.test('404 from a mirror endpoint falls through to the next; from the last it is the answer', async (t) => {
  const regs = await registries(t, 2);
  const [a, b] = regs as [TestRegistry, TestRegistry];
  const image = quickImage('only-at-origin');
  b.pushImage('team/app', '1.0', image);
  const w = fallback(t, regs, image);
  t.same((await w.up.getManifest(repo, tag, [])).bytes, image.manifest, 'the origin had it');
  t.equal(manifests(a), 1, 'the mirror was asked first');
  t.notOk(cooling(w, 0), 'a 404 is an answer, not a failure');
  const missing = await w.up.getManifest(repo, parseReference('nope'), []).catch((e: unknown) => e);
  t.equal((missing as UpstreamError).failure, 'not-found');
  t.equal(b.count({ kind: 'manifest', pathIncludes: 'nope' }), 1, 'the last one said so');
});

t.test('a manifest that does not match its digest never leaves the endpoint that sent it', async (t) => {
  const w = await world(t);
  const [a, b] = w.regs as [TestRegistry, TestRegistry];
  a.inject({ match: { kind: 'manifest' }, type: 'wrong-bytes', times: 2 });
  const byTag = await w.up.getManifest(repo, tag, []);
  t.same(byTag.bytes, w.image.manifest, 'by tag: the header digest did not match, the next endpoint served');
  t.ok(cooling(w, 0));
  t.match(w.states.get(0)?.lastError?.cause, /hashes to sha256:[0-9a-f]{64}, not/);
  w.clock.advance(COOLDOWN_MS);
  const byDigest = await w.up.getManifest(repo, parseReference(w.image.manifestDigest), []);
  t.equal(sha256(byDigest.bytes), w.image.manifestDigest, 'by digest too');
  t.equal(manifests(b), 2);

  // The only endpoint left sends wrong bytes: a clean failure, never the bytes.
  b.inject({ match: { kind: 'manifest' }, type: 'wrong-bytes' });
  a.inject({ match: { kind: 'manifest' }, type: 'wrong-bytes' });
  w.clock.advance(COOLDOWN_MS);
  const err = await w.up.getManifest(repo, parseReference(w.image.manifestDigest), []).catch((e: unknown) => e);
  t.type(err, UpstreamError);
  t.equal((err as UpstreamError).failure, 'bad-response');
});

t.test('a blob body the mirror rejected is charged to the endpoint that sent it', async (t) => {
  const w = await world(t);
  const [a, b] = w.regs as [TestRegistry, TestRegistry];
  const layer = w.image.layers[0]!;
  const digest = parseDigest(layer.digest);
  const first = await w.up.getBlob(repo, digest);
  first.body.resume();
  await new Promise((resolve) => first.body.on('end', resolve));
  t.equal(a.count({ kind: 'blob' }), 1);
  w.up.contentRejected?.(parseDigest(w.image.layers[1]!.digest));
  t.notOk(cooling(w, 0), 'a digest it did not send changes nothing');
  w.up.contentRejected?.(digest);
  t.ok(cooling(w, 0));
  t.match(w.states.get(0)?.lastError?.cause, /blob body that does not match/);
  const again = await w.up.getBlob(repo, digest);
  again.body.resume();
  await new Promise((resolve) => again.body.on('end', resolve));
  t.equal(b.count({ kind: 'blob' }), 1, 'the next request went to the other endpoint');
  w.up.contentRejected?.(digest);
  w.up.contentRejected?.(digest);
  t.ok(cooling(w, 1), 'once charged, the memory of who sent it is gone');
});

t.test('each endpoint has its own token realm and token cache', async (t) => {
  const auth = { kind: 'bearer', username: 'u', password: 'p', separateTokenServer: true } as const;
  const regs = await registries(t, 2, { auth });
  const [a, b] = regs as [TestRegistry, TestRegistry];
  const image = quickImage('tokens');
  for (const r of regs) r.pushImage('team/app', '1.0', image);
  const w = fallback(t, regs, image, { username: 'u', password: 'p' });
  await w.up.getManifest(repo, tag, []);
  t.equal(a.count({ server: 'token' }), 1);
  a.inject({ match: { kind: 'manifest' }, type: 'status', status: 500 });
  t.same((await w.up.getManifest(repo, tag, [])).bytes, image.manifest);
  const tokenAtB = b.filter({ server: 'token' });
  t.equal(tokenAtB.length, 1, "the second endpoint's realm was asked for its own token");
  t.match(tokenAtB[0]?.headers.authorization, /^Basic /, 'with the credentials: the realm is within that endpoint');
  t.same(b.filter({ kind: 'manifest' }).map((r) => r.status), [401, 200], 'b started anonymous: its own challenge taught it its realm');
  await w.up.getManifest(repo, tag, []);
  t.equal(b.count({ server: 'token' }), 1, "b's token is cached for b");
});

t.test('a single endpoint in `endpoints` is a plain upstream (no endpoint reports)', async (t) => {
  const regs = await registries(t, 1);
  const image = quickImage('single');
  regs[0]!.pushImage('team/app', '1.0', image);
  const w = fallback(t, regs, image);
  t.equal(w.up.contentRejected, undefined);
  t.equal(w.states.size, 0);
  t.same((await w.up.getManifest(repo, tag, [])).bytes, image.manifest);
});

t.test("the realm trust boundary is each endpoint's own, not the origin's", async (t) => {
  // The mirror endpoint is reached as localhost, its realm names 127.0.0.1: another host for it,
  // though it is the origin's host. Credentials must not go there on the strength of the origin.
  const auth: TestRegistryOptions['auth'] = { kind: 'bearer', username: 'mirror', password: 'right', publicRepos: ['team/app'] };
  const [mirror, origin] = await registries(t, 2, { auth });
  const image = quickImage('realm-per-endpoint');
  for (const r of [mirror, origin]) r?.pushImage('team/app', '1.0', image);
  const viaName = new URL(mirror!.url.replace('127.0.0.1', 'localhost'));
  const clock = new FakeTimers();
  const up = createUpstream(
    testUpstreamConfig(new URL(origin!.url), { endpoints: [viaName, new URL(origin!.url)], username: 'mirror', password: 'right' }),
    { observer: { upstreamRequest: () => {}, rateLimitRemaining: () => {} }, now: () => clock.now() },
  );
  t.teardown(() => up.close());
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest);
  const tokenRequests = mirror!.filter({ kind: 'token' });
  t.equal(tokenRequests.length, 1);
  t.equal(tokenRequests[0]?.headers.authorization, undefined, 'an anonymous token: the password stayed home');
});

t.test('every call fails over: blob HEAD, tags, referrers and catalog', async (t) => {
  const regs = await registries(t, 2, { catalog: true, referrers: true });
  const [a, b] = regs as [TestRegistry, TestRegistry];
  const image = quickImage('every-call');
  for (const r of regs) r.pushImage('team/app', '1.0', image);
  const w = fallback(t, regs, image, { endpointCooldownMs: 1 });
  const digest = parseDigest(image.layers[0]!.digest);
  const calls: [string, () => Promise<unknown>][] = [
    ['headBlob', () => w.up.headBlob(repo, digest)],
    ['listTags', () => w.up.listTags(repo, FIRST_PAGE)],
    ['listReferrers', () => w.up.listReferrers(repo, parseDigest(image.manifestDigest), '')],
    ['listCatalog', () => w.up.listCatalog(FIRST_PAGE)],
  ];
  for (const [name, call] of calls) {
    w.clock.advance(10);
    const remove = a.inject({ match: {}, type: 'status', status: 503 });
    const before = b.requests.length;
    await call();
    remove();
    t.ok(b.requests.length > before, `${name}: answered by the second endpoint`);
    t.ok(cooling(w, 0), `${name}: the first cools off`);
  }
});

t.test("a caller's abort is not the endpoint's failure: nothing cools off, no other endpoint is asked", async (t) => {
  const w = await world(t);
  const [a, b] = w.regs as [TestRegistry, TestRegistry];
  a.inject({ match: { kind: 'manifest' }, type: 'hang' });
  const controller = new AbortController();
  const pending = w.up.getManifest(repo, tag, [], controller.signal);
  await new Promise((resolve) => setImmediate(resolve));
  controller.abort(new Error('client left'));
  await t.rejects(pending, { message: 'client left' });
  t.notOk(cooling(w, 0));
  t.equal(manifests(b), 0);
  // Without an abort, the hanging endpoint runs into its headers timeout, and that is a failure.
  const head = await w.up.headManifest(repo, parseReference(w.image.manifestDigest), []);
  t.equal(head.digest, w.image.manifestDigest, 'the next endpoint answered');
  t.ok(cooling(w, 0));
});
