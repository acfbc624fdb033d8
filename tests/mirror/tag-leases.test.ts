import t, { type Test } from 'tap';
import { pino } from 'pino';
import { parseRepositoryName, parseTag } from '../../src/oci/index.js';
import { Mirror, noopObserver } from '../../src/mirror/index.js';
import { FileKvStore, FsBlobStore, KeyvMetadataStore } from '../../src/storage/index.js';
import { parseConfig } from '../../src/config/index.js';
import { RateLimitLedger, SyncService } from '../../src/sync/index.js';
import type { Leases } from '../../src/concurrency/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { testUpstream } from '../fixtures/upstream.js';

// The lease paths a shared Redis rarely shows: a lease store that cannot be asked, and a holder
// that never lets go. Either way the replica answers from the upstream itself.

const UP = 'registry.test';
const app = { upstream: UP, name: parseRepositoryName('team/app') };
const V1 = { kind: 'tag' as const, tag: parseTag('v1') };

/** Leases as another replica's Redis would answer: shared, and failing or held for good. */
const broken: Leases = { shared: true, tryAcquire: async () => Promise.reject(new Error('ECONNREFUSED')) };
const heldForGood: Leases = { shared: true, tryAcquire: async () => undefined };

async function mirrorWith(t: Test, reg: TestRegistry, leases: Leases, clock: { now: number }) {
  const root = t.testdir();
  const metadata = new KeyvMetadataStore(new FileKvStore({ root }));
  await metadata.open();
  t.teardown(() => metadata.close());
  const { up } = testUpstream(t, reg.url, { name: UP });
  return new Mirror({ upstreams: new Map([[UP, up]]), store: new FsBlobStore({ root }), metadata, leases, observer: noopObserver, logger: pino({ level: 'silent' }), manifestTTLms: 60_000, now: () => clock.now });
}

t.test('a lease store that cannot be asked: the tag is resolved here, once per TTL as alone', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('lease-broken');
  reg.pushImage('team/app', 'v1', image);
  const clock = { now: Date.now() };
  const mirror = await mirrorWith(t, reg, broken, clock);
  t.equal(sha256((await mirror.manifest(app, V1, [image.mediaType])).bytes!), image.manifestDigest);
  t.equal(reg.count({ method: 'GET', pathIncludes: '/manifests/v1' }), 1);
  clock.now += 120_000;
  const again = await mirror.manifest(app, V1, [image.mediaType]);
  t.equal(again.digest, image.manifestDigest);
  t.equal(reg.count({ method: 'HEAD', pathIncludes: '/manifests/v1' }), 1, 'revalidated here');
});

t.test('a holder that never finishes is waited for no longer than its lease', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('lease-held');
  reg.pushImage('team/app', 'v1', image);
  const mirror = await mirrorWith(t, reg, heldForGood, { now: Date.now() });
  const reply = await mirror.manifest(app, V1, [image.mediaType]);
  t.equal(reply.digest, image.manifestDigest, 'answered from the upstream after the wait');
  t.equal(reg.count({ method: 'GET', pathIncludes: '/manifests/v1' }), 1);
});

t.test('sync with a lease store that cannot be asked runs the entry here', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('lease-sync');
  reg.pushImage('team/app', 'v1', image);
  const mirror = await mirrorWith(t, reg, broken, { now: Date.now() });
  const config = parseConfig({ upstreams: { [UP]: { url: reg.url } }, storage: { path: t.testdir() }, sync: [{ upstream: UP, repository: 'team/app', tags: ['v1'] }] }, { baseDir: '/', env: {} });
  const sync = new SyncService({ config: config.sync, mirror, observer: { syncStarted: () => undefined, syncFinished: () => undefined }, logger: pino({ level: 'silent' }), ledger: new RateLimitLedger(), leases: broken });
  t.teardown(() => sync.close());
  const result = await sync.run();
  t.ok(result.ok);
  t.equal(result.entries[0]?.images.length, 1, 'the entry ran');
});
