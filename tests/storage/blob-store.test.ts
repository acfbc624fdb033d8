import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../src/oci/index.js';
import { DigestMismatchError, FsBlobStore, SizeMismatchError, StorageError, threadVerifier, type BlobInfo, type CreateVerifier } from '../../src/storage/index.js';
import { storageLayout } from '../../src/storage/layout.js';
import { blobStoreContract } from '../fixtures/blob-store-contract.js';
import { digestOf, readAll } from '../fixtures/blob-streams.js';

function hexOf(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

async function listAll(store: FsBlobStore): Promise<BlobInfo[]> {
  const out: BlobInfo[] = [];
  for await (const info of store.list()) out.push(info);
  return out.sort((a, b) => a.digest.localeCompare(b.digest));
}

async function store(root: string, createVerifier?: CreateVerifier): Promise<{ root: string; blobs: FsBlobStore }> {
  const blobs = new FsBlobStore({ root, ...(createVerifier ? { createVerifier } : {}) });
  await blobs.recover();
  return { root, blobs };
}

async function put(blobs: FsBlobStore, bytes: Buffer, digest = digestOf(bytes)): Promise<BlobInfo> {
  const writer = await blobs.begin(digest, bytes.length);
  await writer.write(bytes);
  return writer.commit();
}

t.test('the BlobStore contract', async (t) => {
  blobStoreContract(t, async (t) => ({ store: (await store(t.testdir())).blobs }));
});

t.test('the BlobStore contract, hashed on the thread', async (t) => {
  blobStoreContract(t, async (t) => ({ store: (await store(t.testdir(), threadVerifier)).blobs }));
});

t.test('a committed blob is visible to stat, open, list and can be deleted', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = randomBytes(3000);
  const digest = digestOf(bytes);
  t.equal(await blobs.stat(digest), undefined, 'absent before');
  t.equal(await blobs.open(digest), undefined, 'open of an absent blob is undefined');

  const writer = await blobs.begin(digest);
  t.equal(writer.digest, digest);
  t.equal(writer.expectedSize, undefined);
  await writer.write(bytes.subarray(0, 1000));
  await writer.write(Buffer.alloc(0));
  await writer.write(bytes.subarray(1000));
  t.equal(writer.bytesWritten, 3000);
  t.equal(await blobs.stat(digest), undefined, 'not visible before commit');
  t.same(await writer.commit(), { digest, size: 3000 });
  t.same(await writer.commit(), { digest, size: 3000 }, 'commit twice answers the same');

  const hex = hexOf(digest);
  t.same(await readFile(join(storageLayout(root).blobsDir, 'sha256', hex.slice(0, 2), hex)), bytes, 'versioned layout');
  t.same(await readdir(storageLayout(root).tmpDir), [], 'temp file renamed away');
  t.same(await blobs.stat(digest), { digest, size: 3000 });
  const stream = await blobs.open(digest);
  t.ok(stream);
  t.same(await readAll(stream!), bytes);
  t.same(await listAll(blobs), [{ digest, size: 3000 }]);

  await t.rejects(writer.write(Buffer.from('x')), StorageError, 'no writes after commit');
  await writer.abort(new Error('late abort'));
  t.same(await blobs.stat(digest), { digest, size: 3000 }, 'abort after commit changes nothing');

  t.equal(await blobs.delete(digest), true);
  t.equal(await blobs.delete(digest), false);
  t.equal(await blobs.stat(digest), undefined);
  t.same(await listAll(blobs), []);
});

t.test('a digest mismatch throws; the abort after it finds the temp file removed and no blob', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = Buffer.from('the real content');
  const claimed = digestOf(Buffer.from('something else'));
  const writer = await blobs.begin(claimed, bytes.length);
  await writer.write(bytes);
  const error = await writer.commit().then(
    () => undefined,
    (err: unknown) => err,
  );
  t.type(error, DigestMismatchError);
  t.equal((error as DigestMismatchError).expected, claimed);
  t.equal((error as DigestMismatchError).actual, digestOf(bytes));
  await writer.abort(error as Error);
  t.same(await readdir(storageLayout(root).tmpDir), []);
  t.equal(await blobs.stat(claimed), undefined);
  t.same(await listAll(blobs), []);
  await t.rejects(writer.commit(), DigestMismatchError, 'commit again rejects the same way');
  await t.rejects(writer.write(Buffer.from('x')), DigestMismatchError, 'write after the failed commit rejects');
  await writer.abort(new Error('again'));
});

t.test('size mismatches', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = Buffer.from('0123456789');
  const digest = digestOf(bytes);

  await t.test('short: commit throws', async (t) => {
    const writer = await blobs.begin(digest, 11);
    await writer.write(bytes);
    const err = await writer.commit().catch((e: unknown) => e);
    t.type(err, SizeMismatchError);
    t.match(err, { expected: 11, actual: 10 });
    await writer.abort(err as Error);
    t.same(await readdir(storageLayout(root).tmpDir), []);
    t.equal(await blobs.stat(digest), undefined);
  });

  await t.test('long: the write that would pass the size fails and nothing is written past it', async (t) => {
    const writer = await blobs.begin(digest, 9);
    await writer.write(bytes.subarray(0, 5));
    const err = await writer.write(bytes.subarray(5)).catch((e: unknown) => e);
    t.type(err, SizeMismatchError);
    t.match(err, { expected: 9, actual: 10 });
    t.equal(writer.bytesWritten, 5);
    t.same(await readdir(storageLayout(root).tmpDir), [], 'the writer aborted itself');
    await t.rejects(writer.commit(), SizeMismatchError);
  });

  await t.test('an invalid expected size is refused', async (t) => {
    await t.rejects(blobs.begin(digest, -1), RangeError);
    await t.rejects(blobs.begin(digest, 1.5), RangeError);
  });
});

t.test('abort deletes the temp file, is idempotent and closes the writer', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = randomBytes(100);
  const digest = digestOf(bytes);
  const writer = await blobs.begin(digest);
  await writer.write(bytes);
  t.equal((await readdir(storageLayout(root).tmpDir)).length, 1);
  const reason = new Error('upstream went away');
  await Promise.all([writer.abort(reason), writer.abort(new Error('second'))]);
  await writer.abort(new Error('third'));
  t.same(await readdir(storageLayout(root).tmpDir), []);
  await t.rejects(writer.write(bytes), reason);
  await t.rejects(writer.commit(), reason);
  t.equal(await blobs.stat(digest), undefined);
});

t.test('writes issued without awaiting are serialised in order', async (t) => {
  const { blobs } = await store(t.testdir());
  const parts = Array.from({ length: 20 }, () => randomBytes(777));
  const bytes = Buffer.concat(parts);
  const digest = digestOf(bytes);
  const writer = await blobs.begin(digest, bytes.length);
  const writes = parts.map((p) => writer.write(p));
  const info = await writer.commit();
  await Promise.all(writes);
  t.same(info, { digest, size: bytes.length });
  t.same(await readAll((await blobs.open(digest))!), bytes);
});

t.test('recover creates the layout and removes every temp file', async (t) => {
  const root = t.testdir();
  const fresh = new FsBlobStore({ root });
  t.same(await fresh.recover(), { removedTempFiles: 0 });
  t.same((await readdir(storageLayout(root).base)).sort(), ['blobs', 'tmp']);

  const bytes = randomBytes(10);
  const writer = await fresh.begin(digestOf(bytes));
  await writer.write(bytes);
  await writeFile(join(storageLayout(root).tmpDir, 'stray'), 'x');
  await mkdir(join(storageLayout(root).tmpDir, 'strange-dir'));
  const committed = await put(fresh, randomBytes(20));

  const restarted = new FsBlobStore({ root });
  t.same(await restarted.recover(), { removedTempFiles: 3 });
  t.same(await readdir(storageLayout(root).tmpDir), []);
  t.same(await restarted.stat(committed.digest), committed, 'committed blobs survive');
  await writer.abort(new Error('crashed'));
});

t.test('the store creates its directories lazily without recover', async (t) => {
  const root = t.testdir();
  const blobs = new FsBlobStore({ root });
  t.same(await listAll(blobs), [], 'list of a missing directory is empty');
  const info = await put(blobs, Buffer.from('lazy'));
  t.same(await blobs.stat(info.digest), info);
});

t.test('concurrent writers of the same digest both succeed with one file', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = randomBytes(64 * 1024);
  const digest = digestOf(bytes);
  const a = await blobs.begin(digest, bytes.length);
  const b = await blobs.begin(digest, bytes.length);
  await Promise.all([a.write(bytes), b.write(bytes)]);
  const [ia, ib] = await Promise.all([a.commit(), b.commit()]);
  t.same(ia, { digest, size: bytes.length });
  t.same(ib, { digest, size: bytes.length });
  t.same(await readdir(storageLayout(root).tmpDir), []);
  t.same(await listAll(blobs), [{ digest, size: bytes.length }]);
  t.same(await readAll((await blobs.open(digest))!), bytes);

  const c = await blobs.begin(digest, bytes.length);
  await c.write(bytes);
  t.same(await c.commit(), { digest, size: bytes.length }, 'a later writer of a present blob also succeeds');
  t.same(await readdir(storageLayout(root).tmpDir), []);
});

t.test('sha512 blobs live under their own algorithm and list with the others', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = randomBytes(2048);
  const d512 = digestOf(bytes, 'sha512');
  const d256 = digestOf(bytes, 'sha256');
  t.same(await put(blobs, bytes, d512), { digest: d512, size: 2048 });
  await put(blobs, bytes, d256);
  const hex = hexOf(d512);
  t.same(await readFile(join(storageLayout(root).blobsDir, 'sha512', hex.slice(0, 2), hex)), bytes);
  t.same(await listAll(blobs), [
    { digest: d256, size: 2048 },
    { digest: d512, size: 2048 },
  ]);
  const wrong = await blobs.begin(d512);
  await wrong.write(Buffer.from('nope'));
  await t.rejects(wrong.commit(), DigestMismatchError, 'verified with sha512');
});

t.test('list skips files that are not blobs', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const info = await put(blobs, Buffer.from('listed'));
  const hex = hexOf(info.digest);
  const shard = join(storageLayout(root).blobsDir, 'sha256', hex.slice(0, 2));
  await writeFile(join(shard, `${hex}~`), 'editor backup');
  await writeFile(join(shard, `${hex.slice(0, 2)}zz`), 'not hex');
  await mkdir(join(storageLayout(root).blobsDir, 'sha256', 'not-a-shard'));
  await mkdir(join(storageLayout(root).blobsDir, 'md5'));
  t.same(await listAll(blobs), [info]);
});

t.test('a blob larger than one read comes back intact', async (t) => {
  const { blobs } = await store(t.testdir());
  const bytes = randomBytes(3 * 1024 * 1024 + 17);
  const digest = digestOf(bytes);
  const writer = await blobs.begin(digest, bytes.length);
  for (let off = 0; off < bytes.length; off += 256 * 1024) await writer.write(bytes.subarray(off, off + 256 * 1024));
  await writer.commit();
  t.ok((await readAll((await blobs.open(digest))!)).equals(bytes));
  const span = { start: 1024 * 1024 - 5, end: 2 * 1024 * 1024 + 5 };
  t.ok((await readAll((await blobs.open(digest, span))!)).equals(bytes.subarray(span.start, span.end + 1)));
});

t.test('I/O failures other than absence surface as StorageError', async (t) => {
  // A regular file where the storage directory should be: every path below it is ENOTDIR.
  const dir = t.testdir({ root: 'not a directory' });
  const blobs = new FsBlobStore({ root: join(dir, 'root') });
  const digest = digestOf(Buffer.from('x'));
  await t.rejects(blobs.recover(), StorageError);
  await t.rejects(blobs.stat(digest), StorageError);
  await t.rejects(blobs.open(digest), StorageError);
  await t.rejects(blobs.begin(digest), StorageError);
  await t.rejects(blobs.delete(digest), StorageError);
  await t.rejects(listAll(blobs), StorageError);
});

t.test('abort during commit waits for the commit and undoes nothing', async (t) => {
  const { root, blobs } = await store(t.testdir());
  const bytes = randomBytes(1000);
  const writer = await blobs.begin(digestOf(bytes));
  await writer.write(bytes);
  const committing = writer.commit();
  await writer.abort(new Error('too late'));
  t.same(await committing, { digest: writer.digest, size: 1000 });
  t.same(await blobs.stat(writer.digest), { digest: writer.digest, size: 1000 });

  const bad = await blobs.begin(digestOf(Buffer.from('other')));
  await bad.write(bytes);
  const failing = bad.commit();
  await bad.abort(new Error('meanwhile'));
  await t.rejects(failing, DigestMismatchError);
  t.same(await readdir(storageLayout(root).tmpDir), []);
});
