import t from 'tap';
import { randomBytes } from 'node:crypto';
import { DigestMismatchError, FsBlobStore, SizeMismatchError, StorageError, threadVerifier, verifierFor } from '../../src/storage/index.js';
import { stopHashThread, ThreadVerifier } from '../../src/storage/blobs/hash-thread.js';
import { SLAB_BYTES, slabs } from '../../src/buffers/slab-pool.js';
import { digestOf, readAll } from '../fixtures/blob-streams.js';

// What only the hashing thread does; the BlobWriter, pass-through and BlobStore contracts run with it
// beside the in-thread verifier in their own files.

const MiB = 1024 * 1024;

t.test('bytes in any chunking, slab views or not, over several posts, verify', async (t) => {
  const bytes = randomBytes(3 * MiB + 12_345);
  for (const [name, piece] of [['1 byte then 64 KiB', 65_536], ['whole slabs', SLAB_BYTES], ['odd pieces', 99_991]] as const) {
    const verifier = threadVerifier(digestOf(bytes), bytes.length);
    verifier.update(bytes.subarray(0, 1));
    for (let at = 1; at < bytes.length; at += piece) {
      const part = bytes.subarray(at, at + piece);
      // Every other piece a pooled (shared) view, the rest plain buffers that are copied.
      if ((at / piece) % 2 < 1) {
        const view = slabs.copy(part);
        verifier.update(view);
        slabs.release(view);
      } else verifier.update(part);
    }
    await t.resolves(verifier.finish(), name);
  }
  const sha512 = threadVerifier(digestOf(bytes, 'sha512'), undefined);
  sha512.update(bytes);
  await t.resolves(sha512.finish(), 'the digest names its algorithm');
  const empty = threadVerifier(digestOf(Buffer.alloc(0)), 0);
  await t.resolves(empty.finish(), 'an empty blob');
});

t.test('a wrong size or digest rejects with the error that names it', async (t) => {
  const bytes = randomBytes(2 * MiB);
  const short = threadVerifier(digestOf(bytes), bytes.length + 1);
  short.update(bytes);
  await t.rejects(short.finish(), SizeMismatchError);
  for (const at of [0, MiB, bytes.length - 1]) {
    const wrong = Buffer.from(bytes);
    wrong[at] = (wrong[at] ?? 0) ^ 1;
    const verifier = threadVerifier(digestOf(bytes), bytes.length);
    verifier.update(wrong);
    const error = await verifier.finish().catch((e: unknown) => e);
    t.type(error, DigestMismatchError, `a wrong byte at ${at}`);
    t.match(error, { expected: digestOf(bytes), actual: digestOf(wrong) });
  }
});

t.test('the caller may reuse its memory as soon as update returns', async (t) => {
  const bytes = randomBytes(SLAB_BYTES / 2);
  const verifier = threadVerifier(digestOf(Buffer.concat([bytes, bytes, bytes])), undefined);
  // A plain buffer overwritten at once: it was copied.
  const plain = Buffer.from(bytes);
  verifier.update(plain);
  plain.fill(0);
  // Slab views released at once, then the pool churned: the thread still holds their slabs, so
  // nothing overwrites them before they are hashed (posting waits for a whole slab's worth).
  for (let i = 0; i < 2; i++) {
    const view = slabs.copy(bytes);
    verifier.update(view);
    slabs.release(view);
  }
  for (let i = 0; i < 8; i++) slabs.release(slabs.copy(Buffer.alloc(SLAB_BYTES / 2, 0xee)));
  await t.resolves(verifier.finish());
});

t.test('past the backlog mark room() waits, and resolves once the thread caught up', async (t) => {
  const bytes = randomBytes(SLAB_BYTES);
  const view = slabs.copy(bytes);
  const verifier = threadVerifier(digestOf(Buffer.concat(Array.from({ length: 40 }, () => bytes))), undefined);
  t.equal(verifier.room(), undefined, 'no wait while little is unhashed');
  for (let i = 0; i < 40; i++) verifier.update(view);
  slabs.release(view);
  const room = verifier.room();
  t.type(room, Promise, '40 MiB unhashed: the writer waits');
  await room;
  await t.resolves(verifier.finish());
});

t.test('a discarded verifier lets its views go, and others go on', async (t) => {
  const bytes = randomBytes(2 * MiB);
  const dropped = threadVerifier(digestOf(bytes), bytes.length);
  const view = slabs.copy(bytes.subarray(0, MiB / 2));
  dropped.update(view);
  slabs.release(view);
  dropped.discard();
  await t.rejects(dropped.finish(), StorageError, 'it cannot finish after');
  const kept = threadVerifier(digestOf(bytes), bytes.length);
  kept.update(bytes);
  await t.resolves(kept.finish());
});

t.test('a hashing thread that stops fails the downloads it was hashing, never passes them; the next one starts afresh', async (t) => {
  const bytes = randomBytes(3 * MiB);
  const cut = new ThreadVerifier(digestOf(bytes), bytes.length);
  cut.update(bytes.subarray(0, 2 * MiB));
  await stopHashThread();
  cut.update(bytes.subarray(2 * MiB));
  const error = await cut.finish().catch((e: unknown) => e);
  t.type(error, StorageError);
  t.notOk(error instanceof DigestMismatchError);
  const next = threadVerifier(digestOf(bytes), bytes.length);
  next.update(bytes);
  await t.resolves(next.finish(), 'a new thread hashes the next download');
});

t.test('storage.hashThread: large and unknown sizes go to the thread, small ones stay', async (t) => {
  const bytes = randomBytes(16);
  const on = verifierFor(true);
  t.type(on(digestOf(bytes), 300 * 1024), ThreadVerifier);
  t.type(on(digestOf(bytes), undefined), ThreadVerifier);
  t.notOk(on(digestOf(bytes), 1024) instanceof ThreadVerifier);
  t.notOk(verifierFor(false)(digestOf(bytes), undefined) instanceof ThreadVerifier);
  const small = on(digestOf(bytes), bytes.length);
  small.update(bytes);
  await t.resolves(small.finish());
});

t.test('a blob written through the thread reads back whole from the store', async (t) => {
  const blobs = new FsBlobStore({ root: t.testdir(), createVerifier: verifierFor(true) });
  await blobs.recover();
  const bytes = randomBytes(5 * MiB + 7);
  const writer = await blobs.begin(digestOf(bytes), bytes.length);
  const follower = readAll(writer.follow());
  for (let at = 0; at < bytes.length; at += 200_000) await writer.write(bytes.subarray(at, at + 200_000));
  await writer.commit();
  t.ok((await follower).equals(bytes), 'the follower got every byte');
  const stored = await blobs.open(digestOf(bytes));
  if (stored === undefined) return t.fail('the blob was not kept');
  t.ok((await readAll(stored)).equals(bytes), 'the committed blob');
});
