import t, { type Test } from 'tap';
import { parseDigest, parseRepositoryName, type Digest } from '../../src/oci/index.js';
import { ManifestReferences } from '../../src/mirror/index.js';
import { createMetadataStore, type MetadataStore } from '../../src/storage/index.js';
import type { Config } from '../../src/config/index.js';
import { buildLayer, quickImage, sha256, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { redisTools, sharedRedisUrl, uniqueNamespace } from '../fixtures/redis.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';

// Which repositories hold a digest, as the metadata store records it: read back through a store of
// its own on the same configuration, as a restarted process or another replica would.

if (redisTools.skip && redisTools.required) t.fail(`repository links on redis: ${redisTools.skip}`);

const MANIFEST_ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };

async function openStore(t: Test, storage: Config['storage']): Promise<MetadataStore> {
  const store = createMetadataStore(storage);
  await store.open();
  t.teardown(() => store.close());
  return store;
}

function imageDigests(image: Image): Digest[] {
  return [image.manifestDigest, image.config.digest, ...image.layers.map((l) => l.digest)].map(parseDigest);
}

async function linkedTo(store: MetadataStore, upstream: string, repository: string, digests: readonly Digest[]): Promise<boolean[]> {
  return Promise.all(digests.map((d) => store.hasLink(upstream, repository, d)));
}

t.test('pulling one image from two repositories links both, and the links survive a restart', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('links-two-repos');
  reg.pushImage('a/x', 'v1', image);
  reg.pushImage('b/y', 'v1', image);
  const mirror = await startMirror(t, { upstreams: { 'up.test': { url: reg.url, library: false } } });
  t.equal((await request(`${mirror.url}/v2/a/x/manifests/v1`, { headers: MANIFEST_ACCEPT })).status, 200);
  t.equal((await request(`${mirror.url}/v2/b/y/manifests/v1`, { headers: MANIFEST_ACCEPT })).status, 200);
  await mirror.close();

  const store = await openStore(t, mirror.app.config.storage);
  const digests = imageDigests(image);
  const all = digests.map(() => true);
  t.same(await linkedTo(store, 'up.test', 'a/x', digests), all, 'a/x: the manifest, its config and its layers');
  t.same(await linkedTo(store, 'up.test', 'b/y', digests), all, 'b/y: the same digests');
  t.strictSame(await store.linkedRepositories(parseDigest(image.layers[0]!.digest)), [
    { upstream: 'up.test', repository: 'a/x' },
    { upstream: 'up.test', repository: 'b/y' },
  ]);
});

t.test('a synced image is linked to the repository it was synced from', async (t) => {
  const image = quickImage('links-sync');
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/app', tags: ['1.0'] }] });
  reg.pushImage('team/app', '1.0', image);
  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  await mirror.close();

  const store = await openStore(t, mirror.app.config.storage);
  const digests = imageDigests(image);
  t.same(await linkedTo(store, UP, 'team/app', digests), digests.map(() => true));
});

t.test('a cached blob confirmed by another upstream is linked to the repository that confirmed it', async (t) => {
  const one = await startTestRegistry(t);
  const two = await startTestRegistry(t);
  const layer = buildLayer({ 'shared.txt': 'links' });
  const digest = one.putBlob('team/a', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'one.test': { url: one.url, library: false }, 'two.test': { url: two.url, library: false } } });
  t.equal(sha256((await request(`${mirror.url}/v2/team/a/blobs/${digest}`)).body), digest);
  await mirror.app.settled();
  two.putBlob('c', layer.gz);
  t.equal(sha256((await request(`${mirror.url}/v2/two.test/c/blobs/${digest}`)).body), digest);
  t.equal(two.count({ kind: 'blob', method: 'GET' }), 0, 'confirmed with a HEAD in the scope of c');
  await mirror.close();

  const store = await openStore(t, mirror.app.config.storage);
  t.ok(await store.hasLink('two.test', 'c', parseDigest(digest)), 'linked to (two.test, c)');
  // The download itself linked (one.test, team/a): a blob pulled by digest alone is linked too.
  t.strictSame(
    (await store.linkedRepositories(parseDigest(digest))).map((l) => `${l.upstream}/${l.repository}`).sort(),
    ['one.test/team/a', 'two.test/c'],
    'the repository that downloaded it and the one that confirmed it, nothing else',
  );
});

t.test('links written by one replica are visible to another through Redis', { skip: redisTools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('links-replicas');
  reg.pushImage('team/app', 'v1', image);
  const metadata = { url: await sharedRedisUrl(t), namespace: uniqueNamespace('links') };
  const a = await startMirror(t, { upstreams: { 'up.test': { url: reg.url, library: false } }, metadata });
  t.equal((await request(`${a.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT })).status, 200);

  // Another replica's store on the same configuration, while A keeps running.
  const replica = await openStore(t, a.app.config.storage);
  const digests = imageDigests(image);
  t.same(await linkedTo(replica, 'up.test', 'team/app', digests), digests.map(() => true));
  t.same(await linkedTo(replica, 'up.test', 'team/other', digests), digests.map(() => false), 'only the repository pulled');
});

t.test('a failed link write does not fail the serve, and the next serve writes it', async (t) => {
  const image = quickImage('links-failing');
  const written: Digest[][] = [];
  const failures: unknown[] = [];
  let down = true;
  const references = new ManifestReferences({
    sink: { recordRepository: () => {}, touch: () => {} },
    links: {
      link: async (_upstream, _repository, digests) => {
        if (down) throw new Error('metadata store unreachable');
        written.push([...digests]);
      },
    },
    onLinkFailed: (_ref, _digest, error) => failures.push(error),
  });
  const ref = { upstream: 'up.test', name: parseRepositoryName('team/app') };
  const digest = parseDigest(image.manifestDigest);
  await references.served(ref, digest, image.mediaType, image.manifest);
  t.equal(failures.length, 1, 'reported');
  down = false;
  await references.served(ref, digest, image.mediaType, image.manifest);
  t.same(written, [imageDigests(image)], 'written on the next serve');
  await references.served(ref, digest, image.mediaType, image.manifest);
  t.equal(written.length, 1, 'and not again once written');
});
