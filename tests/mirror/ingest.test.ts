import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseRepositoryName } from '../../src/oci/index.js';
import { BlobDownload } from '../../src/mirror/blob-download.js';
import type { BlobSource } from '../../src/mirror/blob-source.js';
import { Ingest } from '../../src/mirror/ingest.js';
import { PassThroughWriter } from '../../src/mirror/pass-through-writer.js';
import { DigestMismatchError, FileKvStore, FsBlobStore, KeyvMetadataStore, type BlobStore } from '../../src/storage/index.js';
import { digestOf, readAll } from '../fixtures/blob-streams.js';

const ref = { upstream: 'r.test', name: parseRepositoryName('team/app') };
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function setUp(t: Test, refuse = false): Promise<{ ingest: Ingest; store: BlobStore; metadata: KeyvMetadataStore }> {
  const root = t.testdir();
  const files = new FsBlobStore({ root });
  // A store that cannot cache now gives no writer (as a degraded or full cache does).
  const refusing: BlobStore = {
    recover: () => files.recover(),
    stat: (digest) => files.stat(digest),
    open: (digest, span) => files.open(digest, span),
    begin: async () => undefined,
    delete: (digest) => files.delete(digest),
    list: () => files.list(),
  };
  const store = refuse ? refusing : files;
  const metadata = new KeyvMetadataStore(new FileKvStore({ root }));
  await metadata.open();
  t.teardown(() => metadata.close());
  return { ingest: new Ingest({ store, metadata, now: () => 1000 }), store, metadata };
}

/** A source of fixed bytes: what a peer replica or an imported layout would be. */
function bytesSource(bytes: Buffer): BlobSource {
  return { open: async () => ({ size: bytes.length, body: Readable.from([bytes.subarray(0, 100), bytes.subarray(100)]) }) };
}

t.test('content the store keeps is committed, recorded and linked to its upstream, then tagged', async (t) => {
  const { ingest, store, metadata } = await setUp(t);
  const bytes = Buffer.from('{"schemaVersion":2}');
  const digest = await ingest.verify(bytes, undefined, 'sha256');
  t.equal(digest, digestOf(bytes), 'without a claimed digest, the computed one');
  t.equal(await ingest.content(ref, digest, OCI_MANIFEST, bytes), true);
  t.ok((await readAll((await store.open(digest))!)).equals(bytes));
  t.same(await metadata.getManifest(digest), { mediaType: OCI_MANIFEST, size: bytes.length });
  t.same(await metadata.getBlob(digest), { size: bytes.length, upstreams: ['r.test'] });
  await ingest.content({ ...ref, upstream: 'other.test' }, digest, OCI_MANIFEST, bytes);
  t.same((await metadata.getBlob(digest))?.upstreams, ['r.test', 'other.test'], 'a second upstream joins the link');
  await ingest.tag(ref, 'v1', { digest, mediaType: OCI_MANIFEST, size: bytes.length });
  t.same(await metadata.getTag('r.test', 'team/app', 'v1'), { digest, mediaType: OCI_MANIFEST, size: bytes.length, fetchedAt: 1000, pulledAt: 1000 });
  await t.rejects(ingest.verify(bytes, digestOf(Buffer.from('other')), 'sha256'), DigestMismatchError);
});

t.test('a tag remembers a client pull and a sync run apart; an import is neither', async (t) => {
  let now = 1000;
  const { metadata } = await setUp(t);
  const ingest = new Ingest({ store: new FsBlobStore({ root: t.testdir() }), metadata, now: () => now });
  const target = { digest: digestOf(Buffer.from('m')), mediaType: OCI_MANIFEST, size: 1 };
  await ingest.tag(ref, 'v1', target, 'import');
  t.same(await metadata.getTag('r.test', 'team/app', 'v1'), { ...target, fetchedAt: 1000 }, 'imported: neither pulled nor synced');
  now = 2000;
  await ingest.tag(ref, 'v1', target, 'sync');
  t.same(await metadata.getTag('r.test', 'team/app', 'v1'), { ...target, fetchedAt: 2000, syncedAt: 2000 });
  now = 3000;
  await ingest.tag(ref, 'v1', target);
  t.same(await metadata.getTag('r.test', 'team/app', 'v1'), { ...target, fetchedAt: 3000, pulledAt: 3000, syncedAt: 2000 }, 'a client pull keeps the sync time');
  now = 4000;
  await ingest.tag(ref, 'v1', target, 'sync');
  t.same(await metadata.getTag('r.test', 'team/app', 'v1'), { ...target, fetchedAt: 4000, pulledAt: 3000, syncedAt: 4000 }, 'and a sync keeps the pull time');
});

t.test('content the store will not keep now is recorded nowhere; a blob streams through instead', async (t) => {
  const { ingest, metadata } = await setUp(t, true);
  const bytes = Buffer.from('{"schemaVersion":2,"x":1}');
  t.equal(await ingest.content(ref, digestOf(bytes), OCI_MANIFEST, bytes), false);
  t.equal(await metadata.getManifest(digestOf(bytes)), undefined, 'no manifest record');
  t.equal(await metadata.getBlob(digestOf(bytes)), undefined, 'no link');
  const target = await ingest.begin(digestOf(bytes), bytes.length);
  t.equal(target.kept, false);
  t.type(target.writer, PassThroughWriter);
});

t.test('a download from any BlobSource is verified, committed and linked; wrong bytes are neither', async (t) => {
  const { ingest, store, metadata } = await setUp(t);
  const bytes = randomBytes(5000);
  const good = new BlobDownload(bytesSource(bytes), ref, digestOf(bytes), ingest, () => {});
  const follower = (await good.ready).writer.follow();
  t.same(await good.done, { digest: digestOf(bytes), size: bytes.length });
  t.ok((await readAll(follower)).equals(bytes), 'a follower got every byte');
  t.same(await metadata.getBlob(digestOf(bytes)), { size: bytes.length, upstreams: ['r.test'] });

  const claimed = digestOf(Buffer.from('something else'));
  const results: unknown[] = [];
  const bad = new BlobDownload(bytesSource(bytes), ref, claimed, ingest, (result) => results.push(result));
  await t.rejects(bad.done, DigestMismatchError);
  t.equal(await store.stat(claimed), undefined, 'nothing committed');
  t.equal(await metadata.getBlob(claimed), undefined, 'nothing linked');
  t.match(results, [{ error: DigestMismatchError }]);
});
