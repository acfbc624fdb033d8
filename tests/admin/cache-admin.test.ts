import t from 'tap';
import { buildIndex, quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { CacheAdmin, FileBlobRemover, repoMatcher, type BlobRemover } from '../../src/admin/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createMetadataStore, FsBlobStore } from '../../src/storage/index.js';
import type { Digest } from '../../src/oci/index.js';

const INDEX_ACCEPT = { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' };

t.test('gc keeps what a multi-arch index reaches, and deletes only through the BlobRemover', async (t) => {
  const reg = await startTestRegistry(t);
  const amd = quickImage('idx-amd64', { architecture: 'amd64' });
  const arm = quickImage('idx-arm64', { architecture: 'arm64' });
  const index = buildIndex([amd, arm]);
  reg.pushIndex('team/multi', 'v1', index);
  const stray = quickImage('by-digest-only');
  reg.pushImage('team/stray', undefined, stray);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  t.equal((await request(`${mirror.url}/v2/team/multi/manifests/v1`, { headers: INDEX_ACCEPT })).status, 200);
  t.equal((await request(`${mirror.url}/v2/team/multi/manifests/${amd.manifestDigest}`, { headers: INDEX_ACCEPT })).status, 200);
  for (const l of amd.layers) t.equal((await request(`${mirror.url}/v2/team/multi/blobs/${l.digest}`)).status, 200);
  t.equal((await request(`${mirror.url}/v2/team/stray/manifests/${stray.manifestDigest}`, { headers: INDEX_ACCEPT })).status, 200);
  await mirror.close();

  const config = parseConfig({ upstreams: { 'docker.io': { url: reg.url } }, storage: { path: mirror.storage } }, { baseDir: mirror.storage, env: {} });
  const store = new FsBlobStore({ root: mirror.storage });
  const metadata = createMetadataStore(config.storage);
  await metadata.open();
  t.teardown(() => metadata.close());
  const removed: Digest[] = [];
  const inner = new FileBlobRemover(store, metadata);
  const remover: BlobRemover = { remove: async (d) => (removed.push(d), inner.remove(d)) };
  const admin = new CacheAdmin({ root: mirror.storage, store, metadata, remover, pinned: async () => new Set(), isPinned: () => false, pinSources: [], tempGraceMs: undefined });

  const listed = await admin.ls();
  t.equal(listed.tags.length, 1);
  t.equal(listed.tags[0]?.cachedBlobs, 2 + amd.layers.length, 'index, amd64 manifest and its layers are here');
  const result = await admin.gc({ dryRun: false });
  t.same(removed, [stray.manifestDigest], 'only the manifest no tag reaches, through the remover');
  t.same(result.blobs.map((b) => b.digest), [stray.manifestDigest]);
  t.equal(await metadata.getManifest(stray.manifestDigest as Digest), undefined, 'its record went with it');
  t.ok(await store.stat(amd.layers[0]?.digest as Digest), 'the child image layers stay');
  t.same((await admin.gc({ dryRun: false })).blobs, [], 'nothing left to collect');
});

t.test('--repo patterns: * stays in a segment, ** crosses, upstream optional', async (t) => {
  const e = (upstream: string, repository: string) => ({ upstream, repository });
  t.ok(repoMatcher('library/*')(e('docker.io', 'library/alpine')));
  t.notOk(repoMatcher('library/*')(e('docker.io', 'library/a/b')));
  t.ok(repoMatcher('library/**')(e('docker.io', 'library/a/b')));
  t.ok(repoMatcher('docker.io/**')(e('docker.io', 'team/app')));
  t.notOk(repoMatcher('docker.io/**')(e('ghcr.io', 'team/app')));
  t.ok(repoMatcher('team/app')(e('ghcr.io', 'team/app')));
  t.notOk(repoMatcher('team/ap')(e('ghcr.io', 'team/app')), 'anchored');
  t.notOk(repoMatcher('team.app')(e('x', 'teamXapp')), 'dots are literal');
  t.ok(repoMatcher(undefined)(e('x', 'y')));
});
