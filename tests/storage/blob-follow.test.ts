import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { parseDigest, type Digest } from '../../src/oci/index.js';
import type { FsBlobWriter } from '../../src/storage/blobs/blob-writer.js';
import { DigestMismatchError, FsBlobStore, SizeMismatchError, StorageError, type BlobWriter } from '../../src/storage/index.js';
import { storageLayout } from '../../src/storage/layout.js';

function digestOf(bytes: Buffer): Digest {
  return parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

/** Everything a stream did, observed through events. */
interface Observed {
  readonly chunks: Buffer[];
  bytes: number;
  ended: boolean;
  error: Error | undefined;
  readonly settled: Promise<void>;
  body(): Buffer;
  /** Resolves once `done()` holds or the stream finished, checked after every event; rejects after 10 s. */
  until(done: () => boolean): Promise<void>;
}

function observe(stream: Readable): Observed {
  const checks = new Set<() => void>();
  const notify = (): void => {
    for (const check of checks) check();
  };
  const seen = {
    chunks: [] as Buffer[],
    bytes: 0,
    ended: false,
    error: undefined as Error | undefined,
    body: () => Buffer.concat(seen.chunks),
    until: (done: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`condition not reached; ${seen.bytes} bytes seen`));
        }, 10_000);
        const check = (): void => {
          if (!done() && !seen.ended && seen.error === undefined) return;
          clearTimeout(timer);
          checks.delete(check);
          resolve();
        };
        checks.add(check);
        check();
      }),
  };
  const settled = new Promise<void>((resolve) => {
    stream.on('end', () => {
      seen.ended = true;
      resolve();
      notify();
    });
    stream.on('error', (error) => {
      seen.error = error;
      resolve();
      notify();
    });
  });
  stream.on('data', (chunk: Buffer) => {
    seen.chunks.push(chunk);
    seen.bytes += chunk.length;
    notify();
  });
  return Object.assign(seen, { settled });
}

/** Lets pending file reads and stream ticks run, so a byte that should not come had its chance. */
async function settle(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function setUp(root: string, bytes: Buffer, expectedSize?: number): Promise<{ blobs: FsBlobStore; writer: BlobWriter }> {
  const blobs = new FsBlobStore({ root });
  await blobs.recover();
  return { blobs, writer: await blobs.begin(digestOf(bytes), expectedSize) };
}

async function writeInChunks(writer: BlobWriter, bytes: Buffer, size: number): Promise<void> {
  for (let off = 0; off < bytes.length; off += size) await writer.write(bytes.subarray(off, off + size));
}

t.test('a follower started before any write gets every byte but the last only after commit', async (t) => {
  const bytes = randomBytes(100 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  const seen = observe(writer.follow());
  await writeInChunks(writer, bytes, 10 * 1024);
  await seen.until(() => seen.bytes >= bytes.length - 1);
  await settle();
  t.equal(seen.bytes, bytes.length - 1, 'all but the last byte before commit');
  t.equal(seen.ended, false, 'no end before commit');
  await writer.commit();
  await seen.settled;
  t.equal(seen.ended, true);
  t.equal(seen.error, undefined);
  t.ok(seen.body().equals(bytes));
});

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

t.test('an aborted write fails its followers instead of ending them', async (t) => {
  const bytes = randomBytes(50_000);
  const { root } = { root: t.testdir() };
  const { writer } = await setUp(root, bytes, bytes.length);
  const seen = observe(writer.follow());
  await writer.write(bytes.subarray(0, 20_000));
  await seen.until(() => seen.bytes >= 20_000);
  const reason = new Error('upstream connection reset');
  await writer.abort(reason);
  await seen.settled;
  t.equal(seen.error, reason);
  t.equal(seen.ended, false);
  t.equal(seen.bytes, 20_000);
  t.same(await readdir(storageLayout(root).tmpDir), []);

  const late = observe(writer.follow());
  await late.settled;
  t.equal(late.error, reason, 'a follower created after the abort fails too');
  t.equal(late.bytes, 0);
});

t.test('a digest mismatch fails followers that already hold all but the last byte', async (t) => {
  const bytes = randomBytes(30_000);
  const blobs = new FsBlobStore({ root: t.testdir() });
  const writer = await blobs.begin(digestOf(Buffer.from('other')));
  const seen = observe(writer.follow());
  await writeInChunks(writer, bytes, 7000);
  await seen.until(() => seen.bytes >= bytes.length - 1);
  await t.rejects(writer.commit(), DigestMismatchError);
  await seen.settled;
  t.type(seen.error, DigestMismatchError);
  t.equal(seen.bytes, bytes.length - 1, 'the last byte never went out');
  t.equal(seen.ended, false);
});

t.test('a size overrun fails followers', async (t) => {
  const bytes = randomBytes(100);
  const { writer } = await setUp(t.testdir(), bytes, 50);
  const seen = observe(writer.follow());
  await t.rejects(writer.write(bytes), SizeMismatchError);
  await seen.settled;
  t.type(seen.error, SizeMismatchError);
  t.equal(seen.bytes, 0);
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

t.test('a follower with a span gets exactly the span, its last byte only after commit', async (t) => {
  const bytes = randomBytes(20_000);
  const { writer } = await setUp(t.testdir(), bytes, bytes.length);
  const span = { start: 1000, end: 4999 };
  const seen = observe(writer.follow(span));
  await writeInChunks(writer, bytes, 3000);
  await seen.until(() => seen.bytes >= 3999);
  await settle();
  t.equal(seen.bytes, 3999, 'the span is complete but for its last byte');
  t.equal(seen.ended, false, 'no clean end of an unverified span');
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes.subarray(1000, 5000)));

  const after = observe(writer.follow({ start: 19_990, end: 19_999 }));
  await after.settled;
  t.ok(after.body().equals(bytes.subarray(19_990)), 'a span follower after commit reads the committed file');
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

t.test('destroying a follower affects neither the writer nor other followers', async (t) => {
  const bytes = randomBytes(500_000);
  const { writer } = await setUp(t.testdir(), bytes);
  const goner = writer.follow();
  const goneSeen = observe(goner);
  const stayer = observe(writer.follow());
  await writer.write(bytes.subarray(0, 100_000));
  await goneSeen.until(() => goneSeen.bytes > 0);
  goner.destroy();
  await writer.write(bytes.subarray(100_000));
  const info = await writer.commit();
  await stayer.settled;
  t.equal(info.size, bytes.length);
  t.ok(stayer.body().equals(bytes));
  t.ok(goner.destroyed);
  t.ok(goneSeen.bytes < bytes.length);
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

t.test('a follower created after commit reads the committed blob', async (t) => {
  const bytes = randomBytes(10_000);
  const { writer } = await setUp(t.testdir(), bytes);
  await writer.write(bytes);
  await writer.commit();
  const seen = observe(writer.follow());
  await seen.settled;
  t.ok(seen.body().equals(bytes));
});

t.test('an empty blob ends its followers at commit', async (t) => {
  const bytes = Buffer.alloc(0);
  const { writer } = await setUp(t.testdir(), bytes);
  const seen = observe(writer.follow());
  await settle();
  t.equal(seen.ended, false);
  t.same(await writer.commit(), { digest: writer.digest, size: 0 });
  await seen.settled;
  t.equal(seen.ended, true);
  t.equal(seen.bytes, 0);
});

t.test('a failing temp file aborts the write and fails its followers', async (t) => {
  const bytes = randomBytes(300_000);
  const root = t.testdir();
  const { writer } = await setUp(root, bytes);
  await writer.write(bytes.subarray(0, 100_000));
  const seen = observe(writer.follow());
  await seen.until(() => seen.bytes > 0);
  // White box: the shared handle breaking stands in for a disk error.
  await (writer as FsBlobWriter).handle.close();
  const err = await writer.write(bytes.subarray(100_000)).catch((e: unknown) => e);
  t.type(err, StorageError);
  t.match((err as Error).message, /writing the temp file/);
  await seen.settled;
  t.equal(seen.error, err);
  await t.rejects(writer.commit(), StorageError);
  t.same(await readdir(storageLayout(root).tmpDir), []);
});

t.test('a failing file read destroys only that follower', async (t) => {
  const bytes = randomBytes(2 * 1024 * 1024);
  const { writer } = await setUp(t.testdir(), bytes);
  // Small chunks, more than the writer keeps in memory, so the follower must read the file.
  await writeInChunks(writer, bytes, 8 * 1024);
  await (writer as FsBlobWriter).handle.close();
  const seen = observe(writer.follow());
  await seen.settled;
  t.type(seen.error, StorageError);
  t.match(seen.error?.message, /reading the temp file failed/);
  await writer.abort(new Error('cleanup'));
});

t.test('overlapping writes land in order, batched, and a follower sees every byte', async (t) => {
  const bytes = randomBytes(3 * 1024 * 1024 + 17);
  const { blobs, writer } = await setUp(t.testdir(), bytes, bytes.length);
  const seen = observe(writer.follow());
  const writes: Promise<void>[] = [];
  // Nobody waits between calls: chunks queue behind the write in flight and go out together.
  for (let off = 0; off < bytes.length; off += 10_000) writes.push(writer.write(bytes.subarray(off, off + 10_000)));
  await Promise.all(writes);
  t.equal(writer.bytesWritten, bytes.length);
  await writer.commit();
  await seen.settled;
  t.equal(seen.bytes, bytes.length);
  t.equal(seen.ended, true);
  const stream = await blobs.open(digestOf(bytes));
  const parts: Buffer[] = [];
  for await (const chunk of stream!) parts.push(chunk as Buffer);
  t.ok(Buffer.concat(parts).equals(bytes), 'the committed file holds the bytes in order');
});

t.test('overlapping writes past the expected size all fail and leave nothing', async (t) => {
  const bytes = randomBytes(200_000);
  const { writer } = await setUp(t.testdir(), bytes, 150_000);
  const results = await Promise.allSettled([0, 50_000, 100_000, 150_000].map((off) => writer.write(bytes.subarray(off, off + 50_000))));
  t.ok(results.some((r) => r.status === 'rejected' && r.reason instanceof SizeMismatchError), 'the overflowing write fails with a size mismatch');
  await t.rejects(writer.commit());
});
