import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { FsBlobWriter } from '../../src/storage/blobs/blob-writer.js';
import { DigestMismatchError, FsBlobStore, StorageError, type BlobWriter } from '../../src/storage/index.js';
import { storageLayout } from '../../src/storage/layout.js';
import type { Digest } from '../../src/oci/index.js';
import { digestOf, observe, settle } from '../fixtures/blob-streams.js';

// A file that stops taking bytes (a full disk) must not fail the clients following the write: the
// writer streams on from memory at the slowest follower's pace, verifies, and keeps nothing.
// White box: closing the shared handle stands in for the disk error (the next writev fails).

const KiB = 1024;
const MiB = 1024 * KiB;

async function setUp(root: string, digest: Digest, expectedSize?: number): Promise<{ blobs: FsBlobStore; writer: BlobWriter }> {
  const blobs = new FsBlobStore({ root });
  await blobs.recover();
  return { blobs, writer: await blobs.begin(digest, expectedSize) };
}

function breakFile(writer: BlobWriter): Promise<void> {
  return (writer as FsBlobWriter).handle.close();
}

function chunksOf(bytes: Buffer, from: number, size = 64 * KiB): Buffer[] {
  const out: Buffer[] = [];
  for (let off = from; off < bytes.length; off += size) out.push(bytes.subarray(off, Math.min(off + size, bytes.length)));
  return out;
}

t.test('the file fails mid-write: followers get every byte, commit verifies and keeps nothing, the temp file is gone', async (t) => {
  const bytes = randomBytes(300_000);
  const root = t.testdir();
  const { blobs, writer } = await setUp(root, digestOf(bytes));
  await writer.write(bytes.subarray(0, 100_000));
  const seen = observe(writer.follow());
  await seen.until(() => seen.bytes > 0);
  t.equal(writer.stoppedCaching, undefined, 'caching while the file takes bytes');
  await breakFile(writer);
  await writer.write(bytes.subarray(100_000));
  t.type(writer.stoppedCaching, StorageError);
  t.match(writer.stoppedCaching?.message, /writing the temp file/);
  const late = observe(writer.follow());
  await late.settled;
  t.match(late.error?.message, /streamed without caching/, 'a late follower is refused (its bytes may be gone from memory)');
  t.same(await writer.commit(), { digest: writer.digest, size: bytes.length });
  await seen.settled;
  t.equal(seen.error, undefined);
  t.ok(seen.body().equals(bytes), 'the follower got the whole blob');
  t.equal(await blobs.stat(writer.digest), undefined, 'nothing was kept');
  t.same(await readdir(storageLayout(root).tmpDir), []);
  await writer.abort(new Error('late abort is a no-op'));
});

t.test('the file fails with nobody following: the write fails, so the source stops', async (t) => {
  const bytes = randomBytes(200_000);
  const root = t.testdir();
  const { writer } = await setUp(root, digestOf(bytes));
  await writer.write(bytes.subarray(0, 100_000));
  await breakFile(writer);
  const err = await writer.write(bytes.subarray(100_000)).catch((e: unknown) => e);
  t.type(err, StorageError);
  t.match((err as Error).message, /no client follows it/);
  await t.rejects(writer.commit(), StorageError);
  t.same(await readdir(storageLayout(root).tmpDir), []);
});

t.test('once in memory, the slowest follower paces the writer', async (t) => {
  const bytes = randomBytes(6 * MiB);
  const { writer } = await setUp(t.testdir(), digestOf(bytes), bytes.length);
  await writer.write(bytes.subarray(0, 64 * KiB));
  const follower = writer.follow();
  await breakFile(writer);
  const writes = chunksOf(bytes, 64 * KiB).map((chunk) => writer.write(chunk));
  let done = 0;
  for (const w of writes) void w.then(() => done++);
  await settle();
  t.ok(done > 0 && done < writes.length, `${done} of ${writes.length} writes went through before the follower read a byte`);
  // Every chunk is readable at once; the caller is held back (its writes settle) at the follower's pace.
  t.ok(64 * KiB * (1 + done) <= 4 * MiB + 16 * 64 * KiB, `at most the lag (and one batch) ahead of the follower: ${done} writes settled`);
  const seen = observe(follower);
  await Promise.all(writes);
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes), 'the follower got the whole blob');
  t.type(writer.stoppedCaching, StorageError);
});

t.test('a span follower waiting for its last byte does not hold the writer back', async (t) => {
  const bytes = randomBytes(6 * MiB);
  const { writer } = await setUp(t.testdir(), digestOf(bytes), bytes.length);
  await writer.write(bytes.subarray(0, 64 * KiB));
  const span = observe(writer.follow({ start: 1000, end: 199_999 }));
  await breakFile(writer);
  // Far more than the lag past the span's end: the follower keeps its last byte itself.
  await Promise.all(chunksOf(bytes, 64 * KiB).map((chunk) => writer.write(chunk)));
  await settle();
  t.equal(span.ended, false, 'the span waits for the verdict');
  await writer.commit();
  await span.settled;
  t.ok(span.body().equals(bytes.subarray(1000, 200_000)));
});

t.test('the fsync fails after the digest matched: followers still get the blob, nothing is kept', async (t) => {
  const bytes = randomBytes(300_000);
  const root = t.testdir();
  const { blobs, writer } = await setUp(root, digestOf(bytes));
  const seen = observe(writer.follow());
  await writer.write(bytes);
  await breakFile(writer);
  t.same(await writer.commit(), { digest: writer.digest, size: bytes.length });
  t.type(writer.stoppedCaching, StorageError);
  await seen.settled;
  t.ok(seen.body().equals(bytes));
  t.equal(await blobs.stat(writer.digest), undefined);
  t.same(await readdir(storageLayout(root).tmpDir), []);
});

t.test('wrong bytes after caching stopped still fail every follower', async (t) => {
  const bytes = randomBytes(300_000);
  const { writer } = await setUp(t.testdir(), digestOf(randomBytes(300_000)));
  await writer.write(bytes.subarray(0, 100_000));
  const seen = observe(writer.follow());
  await breakFile(writer);
  await writer.write(bytes.subarray(100_000));
  await t.rejects(writer.commit(), DigestMismatchError);
  await seen.settled;
  t.type(seen.error, DigestMismatchError, 'no clean end of wrong bytes');
  t.ok(seen.bytes < bytes.length);
});
