import { inspect } from 'node:util';
import t, { type Test } from 'tap';
import { FIRST_PAGE, parseDigest, parseReference, parseRepositoryName } from '../../src/oci/index.js';
import { type Upstream, type UpstreamFailure } from '../../src/upstream/index.js';
import { quickImage } from '../fixtures/images.js';
import { expectFailure as expectUpstreamFailure, testUpstream, type UpstreamOverrides } from '../fixtures/upstream.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { FakeTimers } from '../fixtures/fake-timers.js';

// A unique password: it must never show up in anything thrown.
const CANARY = `canary-${process.pid}-auth-9f2c4e`;
const thrown: unknown[] = [];

function upstreamFor(t: Test, registry: TestRegistry, overrides: UpstreamOverrides = {}): Upstream {
  return testUpstream(t, registry.url, overrides).up;
}

const expectFailure = (t: Test, promise: Promise<unknown>, failure: UpstreamFailure) => expectUpstreamFailure(t, promise, failure, thrown);

const repo = parseRepositoryName('team/app');
const tag = parseReference('1.0');
const auths = (r: TestRegistry, server?: 'registry' | 'token') => r.filter(server ? { server } : {}).map((q) => q.headers.authorization);

async function pushed(t: Test, options: Parameters<typeof startTestRegistry>[1]) {
  const registry = await startTestRegistry(t, options);
  const image = quickImage(`auth-${t.name}`);
  registry.pushImage('team/app', '1.0', image);
  return { registry, image };
}

t.test('anonymous registry: no Authorization is ever sent', async (t) => {
  const { registry, image } = await pushed(t, {});
  const up = upstreamFor(t, registry);
  const m = await up.getManifest(repo, tag, []);
  t.same(m.bytes, image.manifest);
  t.equal(m.digestHeader, image.manifestDigest);
  t.same(auths(registry), [undefined]);
});

t.test('Basic: one challenge, then credentials up front', async (t) => {
  const { registry, image } = await pushed(t, { auth: { kind: 'basic', username: 'mirror', password: CANARY } });
  const up = upstreamFor(t, registry, { username: 'mirror', password: CANARY });
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest);
  t.equal((await up.headBlob(repo, parseDigest(image.config.digest))).size, image.config.size);
  t.equal(registry.count({ status: 401 }), 1, 'only the very first request was challenged');
  t.match(auths(registry), [undefined, /^Basic /, /^Basic /]);
});

t.test('Bearer with credentials: Basic to the realm, Bearer to the registry, token cached', async (t) => {
  const { registry, image } = await pushed(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY } });
  const up = upstreamFor(t, registry, { username: 'mirror', password: CANARY });
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest);
  t.equal(registry.tokensIssued, 1);
  const token = registry.filter({ kind: 'token' })[0];
  t.match(token?.headers.authorization, /^Basic /);
  t.same(token?.query.getAll('scope'), ['repository:team/app:pull']);
  t.equal(token?.query.get('service'), 'test-registry');
  // Same scope: the cached token goes out with the first attempt, no challenge, no token request.
  await up.headManifest(repo, tag, []);
  const blob = await up.getBlob(repo, parseDigest(image.layers[0]!.digest));
  blob.body.resume();
  t.equal(registry.tokensIssued, 1, 'no second token');
  t.equal(registry.count({ status: 401 }), 1);
  t.match(auths(registry, 'registry').slice(-2), [/^Bearer /, /^Bearer /]);
});

t.test('Bearer anonymous on a public repository: no credentials to the realm', async (t) => {
  const registry = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'owner', password: 'secret', publicRepos: ['public/app'] } });
  const image = quickImage('public');
  registry.pushImage('public/app', 'latest', image);
  const up = upstreamFor(t, registry);
  const m = await up.getManifest(parseRepositoryName('public/app'), parseReference('latest'), []);
  t.same(m.bytes, image.manifest);
  t.same(auths(registry, 'token'), [undefined]);
});

t.test('concurrent requests share one token fetch', async (t) => {
  const { registry, image } = await pushed(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY } });
  const up = upstreamFor(t, registry, { username: 'mirror', password: CANARY });
  const digests = [image.config.digest, ...image.layers.map((l) => l.digest)];
  const sizes = await Promise.all([...digests, ...digests].map((d) => up.headBlob(repo, parseDigest(d))));
  t.same(
    sizes.map((s) => s.size),
    [image.config.size, ...image.layers.map((l) => l.size), image.config.size, ...image.layers.map((l) => l.size)],
  );
  t.equal(registry.tokensIssued, 1);
});

t.test('an expired token is renewed before use', async (t) => {
  const { registry } = await pushed(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY, expiresIn: 1 } });
  const clock = new FakeTimers();
  const { up } = testUpstream(t, registry.url, { username: 'mirror', password: CANARY }, () => clock.now());
  await up.headManifest(repo, tag, []);
  t.equal(registry.tokensIssued, 1);
  await up.headManifest(repo, tag, []);
  t.equal(registry.tokensIssued, 1, 'reused within its lifetime');
  clock.advance(1000);
  await up.headManifest(repo, tag, []);
  t.equal(registry.tokensIssued, 2, 'a fresh token');
  t.equal(registry.count({ status: 401 }), 1, 'renewed up front, not after a refusal');
});

t.test('a refused cached token is dropped and the request retried once', async (t) => {
  const { registry, image } = await pushed(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY } });
  const up = upstreamFor(t, registry, { username: 'mirror', password: CANARY });
  await up.headManifest(repo, tag, []);
  registry.expireTokens();
  t.same((await up.getManifest(repo, tag, [])).bytes, image.manifest);
  t.equal(registry.tokensIssued, 2);
  t.equal(registry.count({ status: 401 }), 2);
});

t.test('wrong credentials: unauthorized', async (t) => {
  const bearer = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  bearer.pushImage('team/app', '1.0', quickImage('wrong-bearer'));
  const err = await expectFailure(t, upstreamFor(t, bearer, { username: 'mirror', password: CANARY }).getManifest(repo, tag, []), 'unauthorized');
  t.equal(err?.details.status, 401);

  const basic = await startTestRegistry(t, { auth: { kind: 'basic', username: 'mirror', password: 'right' } });
  basic.pushImage('team/app', '1.0', quickImage('wrong-basic'));
  await expectFailure(t, upstreamFor(t, basic, { username: 'mirror', password: CANARY }).getManifest(repo, tag, []), 'unauthorized');
  t.equal(basic.count(), 2, 'one anonymous try, one with Basic, no more');

  await expectFailure(t, upstreamFor(t, basic).getManifest(repo, tag, []), 'unauthorized');
});

t.test("Docker Hub's 401 for unknown repositories becomes not-found", async (t) => {
  const registry = await startTestRegistry(t, { unknownRepoIs401: true });
  const missing = parseRepositoryName('nobody/here');
  const err = await expectFailure(t, upstreamFor(t, registry).getManifest(missing, tag, []), 'not-found');
  t.equal(err?.details.status, 401);
  t.equal(registry.count({ kind: 'manifest' }), 2, 'one retry with a fresh token, no more');

  // With accepted credentials the realm vouched for us: still "missing or private".
  const withCreds = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY }, unknownRepoIs401: true });
  await expectFailure(t, upstreamFor(t, withCreds, { username: 'mirror', password: CANARY }).listTags(missing, FIRST_PAGE), 'not-found');
  await expectFailure(t, upstreamFor(t, withCreds, { username: 'mirror', password: CANARY }).headBlob(missing, parseDigest(`sha256:${'a'.repeat(64)}`)), 'not-found');
});

t.test('the canary password appears in nothing thrown', async (t) => {
  t.ok(thrown.length >= 5, `${thrown.length} errors collected`);
  const encoded = Buffer.from(`mirror:${CANARY}`).toString('base64');
  for (const err of thrown) {
    const text = `${String(err)}\n${inspect(err, { depth: 6 })}\n${JSON.stringify(err)}`;
    t.notOk(text.includes(CANARY) || text.includes(encoded), `clean: ${(err as Error).message}`);
  }
});
