import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FsBlobWriter } from '../../src/storage/blobs/blob-writer.js';
import { FsBlobStore, StorageError, threadVerifier, type BlobWriter } from '../../src/storage/index.js';
import { blobWriterContract } from '../fixtures/blob-writer-contract.js';
import { digestOf, observe, settle } from '../fixtures/blob-streams.js';
import { SMALL_READ_BYTES, SMALL_READS_BYTES } from '../../src/storage/blobs/read-buffers.js';
import { SLAB_BYTES } from '../../src/buffers/slab-pool.js';

async function setUp(root: string, bytes: Buffer, expectedSize?: number): Promise<{ blobs: FsBlobStore; writer: BlobWriter }> {
  const blobs = new FsBlobStore({ root });
  await blobs.recover();
  return { blobs, writer: await blobs.begin(digestOf(bytes), expectedSize) };
}

async function writeInChunks(writer: BlobWriter, bytes: Buffer, size: number): Promise<void> {
  for (let off = 0; off < bytes.length; off += size) await writer.write(bytes.subarray(off, off + size));
}

for (const [name, createVerifier] of [['', undefined], [', hashed on the thread', threadVerifier]] as const) {
  t.test(`the BlobWriter contract${name}`, async (t) => {
    blobWriterContract(t, {
      begin: async (t, digest, expectedSize) => {
        const blobs = new FsBlobStore({ root: t.testdir(), ...(createVerifier ? { createVerifier } : {}) });
        await blobs.recover();
        return blobs.begin(digest, expectedSize);
      },
      holdsBack: 'byte',
      lateFollowers: true,
      needsFollowers: false,
    });
  });
}

// What only a file-backed writer does: followers read back from the temp file at their own pace.

t.test('with a known size only the final byte waits for commit', async (t) => {
  const bytes = randomBytes(4096);
  const { writer } = await setUp(t.testdir(), bytes, bytes.length);
  const seen = observe(writer.follow());
  await writer.write(bytes.subarray(0, 1000));
  await seen.until(() => seen.bytes >= 1000);
  t.equal(seen.bytes, 1000, 'a known size lets the newest byte through');
  await writer.write(bytes.subarray(1000));
  await seen.until(() => seen.bytes >= bytes.length - 1);
  await settle();
  t.equal(seen.bytes, bytes.length - 1);
  t.equal(seen.ended, false);
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes));
});

t.test('followers at different paces, one paused until after commit, get identical bytes', async (t) => {
  const bytes = randomBytes(3 * 1024 * 1024 + 333);
  const { writer, blobs } = await setUp(t.testdir(), bytes);
  const flowing = observe(writer.follow());
  const paused = writer.follow();
  paused.read(0); // asks once, then nobody reads: the follower may fill its buffer and no more
  const midway: Readable[] = [];
  for (let off = 0; off < bytes.length; off += 64 * 1024) {
    await writer.write(bytes.subarray(off, off + 64 * 1024));
    if (off === 1024 * 1024) midway.push(writer.follow());
  }
  t.equal(midway.length, 1);
  // The paused follower has had no reader; it must not have buffered the whole blob.
  t.ok(paused.readableLength > 0 && paused.readableLength <= 2 * 1024 * 1024, `paused follower buffered ${paused.readableLength} bytes`);
  const late = observe(midway[0]!);
  await writer.commit();
  const pausedSeen = observe(paused);
  await Promise.all([flowing.settled, late.settled, pausedSeen.settled]);
  for (const [name, seen] of [
    ['flowing', flowing],
    ['started midway', late],
    ['paused', pausedSeen],
  ] as const) {
    t.equal(seen.error, undefined, `${name}: no error`);
    t.ok(seen.body().equals(bytes), `${name}: identical bytes`);
  }
  t.same(await blobs.stat(writer.digest), { digest: writer.digest, size: bytes.length });
});

t.test('a span follower far behind the writer reads from the file', async (t) => {
  const bytes = randomBytes(2 * 1024 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  await writeInChunks(writer, bytes, 128 * 1024);
  const seen = observe(writer.follow({ start: 10, end: 1024 * 1024 + 10 }));
  await seen.until(() => seen.bytes >= 1024 * 1024);
  t.equal(seen.bytes, 1024 * 1024, 'all but the last span byte');
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes.subarray(10, 1024 * 1024 + 11)));
});

t.test('a follower destroyed while its file read is in flight releases cleanly', async (t) => {
  const bytes = randomBytes(2 * 1024 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  await writeInChunks(writer, bytes, 256 * 1024);
  const follower = writer.follow();
  const seen = observe(follower);
  follower.pause();
  follower.read(0); // starts a read of offset 0, which is only in the file by now
  follower.destroy(new Error('client left'));
  await seen.settled;
  t.equal(seen.error?.message, 'client left');
  t.equal(seen.bytes, 0);
  t.same(await writer.commit(), { digest: writer.digest, size: bytes.length });
});

t.test('a failing file read destroys only that follower', async (t) => {
  const bytes = randomBytes(6 * 1024 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  // More than the writer keeps in memory (4 MiB), so the follower must read the file.
  await writeInChunks(writer, bytes, 64 * 1024);
  await (writer as FsBlobWriter).handle.close();
  const seen = observe(writer.follow());
  await seen.settled;
  t.type(seen.error, StorageError);
  t.match(seen.error?.message, /reading the temp file failed/);
  await writer.abort(new Error('cleanup'));
});

t.test('a piece a follower handed out stays intact until it is recycled, whatever the writer writes meanwhile', async (t) => {
  const bytes = randomBytes(24 * 1024 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  const follower = writer.follow() as Readable & { recycle(chunk: Buffer): void };
  // Like the HTTP send loop: every piece is recycled once "written", except the first view of a slab
  // (past the small reads, which are copies), which a socket that has not drained yet still holds.
  let held: { buf: Buffer; copy: Buffer; at: number } | undefined;
  let got = 0;
  follower.on('data', (chunk: Buffer) => {
    if (held === undefined && chunk.buffer.byteLength === SLAB_BYTES) held = { buf: chunk, copy: Buffer.from(chunk), at: got };
    else follower.recycle(chunk);
    got += chunk.length;
  });
  const done = new Promise((resolve) => follower.once('end', resolve));
  // Slabs are reused as soon as every holder let go: 24 MiB through 4 MiB of recent chunks reuses each many times.
  await writeInChunks(writer, bytes, 64 * 1024);
  await writer.commit();
  await done;
  t.equal(got, bytes.length);
  t.ok(held !== undefined && held.buf.equals(held.copy), 'the held piece still has the bytes it had when handed out');
  t.ok(held !== undefined && held.buf.equals(bytes.subarray(held.at, held.at + held.buf.length)));
  follower.recycle(held!.buf);
});

t.test('a follower reading small is handed copies, so a client that stops reading holds 64 KiB, not a slab', async (t) => {
  const bytes = randomBytes(12 * 1024 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  const follower = writer.follow() as Readable & { recycle(chunk: Buffer): void; slowDown(): void };
  const pieces: { at: number; length: number; slab: boolean }[] = [];
  let got = 0;
  follower.on('data', (chunk: Buffer) => {
    pieces.push({ at: got, length: chunk.length, slab: chunk.buffer.byteLength === SLAB_BYTES });
    got += chunk.length;
    // As the send loop does when a socket queued its piece: read small again.
    if (got >= 8 * 1024 * 1024 && got - chunk.length < 8 * 1024 * 1024) follower.slowDown();
    follower.recycle(chunk);
  });
  const done = new Promise((resolve) => follower.once('end', resolve));
  await writeInChunks(writer, bytes, 64 * 1024);
  await writer.commit();
  await done;
  t.equal(got, bytes.length);
  const small = (p: (typeof pieces)[number]): boolean => !p.slab && p.length <= SMALL_READ_BYTES;
  t.ok(pieces.filter((p) => p.at < SMALL_READS_BYTES).every(small), 'the first bytes: small copies');
  t.ok(pieces.some((p) => p.at >= SMALL_READS_BYTES && p.at < 8 * 1024 * 1024 && p.slab), 'then views of the slabs');
  t.ok(small(pieces.find((p) => p.at >= 8 * 1024 * 1024)!), 'after the consumer fell behind: a small copy again');
});

t.test('the bytes a writer was given are copied: the caller may reuse its buffer at once', async (t) => {
  const bytes = randomBytes(1024 * 1024);
  const { writer, blobs } = await setUp(t.testdir(), bytes);
  const seen = observe(writer.follow());
  const scratch = Buffer.alloc(64 * 1024);
  for (let off = 0; off < bytes.length; off += scratch.length) {
    bytes.copy(scratch, 0, off, off + scratch.length);
    const written = writer.write(scratch);
    scratch.fill(0xee);
    await written;
  }
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes), 'followers got the bytes as written');
  const stored = await blobs.open(writer.digest);
  t.ok(stored !== undefined, 'the digest matched: the file holds the bytes as written');
  stored?.destroy();
});
