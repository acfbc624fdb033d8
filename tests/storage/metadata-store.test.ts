import t from 'tap';
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../../src/oci/index.js';
import { FileKvStore, KeyvMetadataStore, StorageError, type BlobRecord, type ManifestRecord, type TagRecord } from '../../src/storage/index.js';

function digestOf(text: string): Digest {
  return parseDigest(`sha256:${createHash('sha256').update(text).digest('hex')}`);
}

async function openStore(root: string, namespace?: string): Promise<{ meta: KeyvMetadataStore; kv: FileKvStore }> {
  const kv = new FileKvStore({ root });
  const meta = new KeyvMetadataStore(kv, namespace === undefined ? {} : { namespace });
  await meta.open();
  return { meta, kv };
}

const tag: TagRecord = {
  digest: digestOf('manifest'),
  mediaType: 'application/vnd.oci.image.index.v1+json',
  size: 1234,
  fetchedAt: 1_700_000_000_123,
};
const manifest: ManifestRecord = { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: 527 };
// Strings keyv's default serializer would rewrite (':'-prefixed, ':base64:'): they must round-trip as-is.
const blob: BlobRecord = { size: 42, upstreams: ['docker.io', ':colon', ':base64:aGk='] };

t.test('tags, manifests and blobs round-trip and survive a reopen', async (t) => {
  const root = t.testdir();
  const { meta } = await openStore(root);
  const d = digestOf('blob');
  t.equal(await meta.getTag('docker.io', 'library/alpine', 'latest'), undefined);
  t.equal(await meta.getManifest(tag.digest), undefined);
  t.equal(await meta.getBlob(d), undefined);

  await meta.setTag('docker.io', 'library/alpine', 'latest', tag);
  await meta.setManifest(tag.digest, manifest);
  await meta.setBlob(d, blob);
  t.same(await meta.getTag('docker.io', 'library/alpine', 'latest'), tag);
  t.same(await meta.getManifest(tag.digest), manifest);
  t.same(await meta.getBlob(d), blob);
  await meta.close();
  await meta.close();

  const { meta: again } = await openStore(root);
  t.teardown(() => again.close());
  t.strictSame(await again.getTag('docker.io', 'library/alpine', 'latest'), tag);
  t.strictSame(await again.getManifest(tag.digest), manifest);
  t.strictSame(await again.getBlob(d), blob);

  await again.deleteBlob(d);
  t.equal(await again.getBlob(d), undefined);
  await again.deleteBlob(d);
});

t.test('tag keys keep upstream, repository and tag apart', async (t) => {
  const { meta } = await openStore(t.testdir());
  t.teardown(() => meta.close());
  const other = { ...tag, size: 1 };
  await meta.setTag('a/b', 'c', 'x', tag);
  await meta.setTag('a', 'b/c', 'x', other);
  await meta.setTag('localhost:5000', 'repo', 'x', { ...tag, size: 2 });
  t.same(await meta.getTag('a/b', 'c', 'x'), tag);
  t.same(await meta.getTag('a', 'b/c', 'x'), other);
  t.equal((await meta.getTag('localhost:5000', 'repo', 'x'))?.size, 2);
  t.equal(await meta.getTag('localhost', '5000/repo', 'x'), undefined);
});

t.test('records of the wrong shape read as absent', async (t) => {
  const { meta, kv } = await openStore(t.testdir(), 'ns');
  t.teardown(() => meta.close());
  const d = digestOf('x');
  const raw = (value: unknown) => JSON.stringify({ value });
  await kv.set(`ns:blob:${d}`, raw({ size: '42', upstreams: [] }));
  t.equal(await meta.getBlob(d), undefined, 'size not a number');
  await kv.set(`ns:blob:${d}`, raw({ size: 42, upstreams: [1] }));
  t.equal(await meta.getBlob(d), undefined, 'upstreams not strings');
  await kv.set(`ns:manifest:${d}`, raw(['mediaType']));
  t.equal(await meta.getManifest(d), undefined, 'an array');
  await kv.set(`ns:manifest:${d}`, raw({ mediaType: 'x' }));
  t.equal(await meta.getManifest(d), undefined, 'size missing');
  await kv.set(`ns:tag:up/repo:t`, raw({ ...tag, digest: 'sha256:nothex' }));
  t.equal(await meta.getTag('up', 'repo', 't'), undefined, 'an invalid digest');
  await kv.set(`ns:tag:up/repo:t`, raw({ ...tag, fetchedAt: 'yesterday' }));
  t.equal(await meta.getTag('up', 'repo', 't'), undefined, 'fetchedAt not a number');
  await kv.set(`ns:tag:up/repo:t`, raw(tag));
  t.same(await meta.getTag('up', 'repo', 't'), tag, 'the namespace prefixes every key');
});

t.test('store failures surface as StorageError', async (t) => {
  const root = t.testdir();
  const { meta } = await openStore(root);
  await meta.close();
  const d = digestOf('y');
  await t.rejects(meta.getBlob(d), StorageError);
  await t.rejects(meta.setBlob(d, blob), StorageError);
  await t.rejects(meta.deleteBlob(d), StorageError);
  await t.rejects(meta.setTag('u', 'r', 't', tag), StorageError);
});
