import t from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobReadStream } from '../../src/storage/blobs/blob-read-stream.js';
import { READ_CHUNK_BYTES, readBuffers, ReadSize, SMALL_READ_BYTES, SMALL_READS_BYTES } from '../../src/storage/blobs/read-buffers.js';

t.test('reads stay small while a stalled client could still be filling its socket, then double, and start small again when it falls behind', async (t) => {
  const size = new ReadSize();
  let streamed = 0;
  const read = (): number => {
    const bytes = size.next(streamed);
    streamed += bytes;
    return bytes;
  };
  const small = SMALL_READS_BYTES / SMALL_READ_BYTES;
  const seen = Array.from({ length: small + 6 }, read);
  t.same(seen.slice(0, small), Array(small).fill(SMALL_READ_BYTES), 'the first bytes go in small reads');
  t.same(seen.slice(small), [SMALL_READ_BYTES, 2 * SMALL_READ_BYTES, 4 * SMALL_READ_BYTES, 8 * SMALL_READ_BYTES, READ_CHUNK_BYTES, READ_CHUNK_BYTES]);
  size.slowDown();
  t.same([read(), read()], [SMALL_READ_BYTES, 2 * SMALL_READ_BYTES], 'past the first bytes, a slowed-down stream grows again at once');
  const short = new ReadSize(SMALL_READS_BYTES);
  t.same([short.next(0), short.next(SMALL_READ_BYTES)], [SMALL_READ_BYTES, 2 * SMALL_READ_BYTES], 'a stream no longer than that grows at once');
  const follower = new ReadSize();
  t.same([follower.next(SMALL_READS_BYTES), follower.next(SMALL_READS_BYTES)], [SMALL_READ_BYTES, 2 * SMALL_READ_BYTES], 'bytes handed out from memory count too: a follower past them grows at once');
});

t.test('a buffer given back twice is handed out once: two streams never share one', async (t) => {
  const a = readBuffers.take(READ_CHUNK_BYTES);
  readBuffers.give(a);
  readBuffers.give(a.subarray(0, 10));
  const b = readBuffers.take(READ_CHUNK_BYTES);
  const c = readBuffers.take(READ_CHUNK_BYTES);
  t.not(b.buffer, c.buffer);
  t.equal(b.length, READ_CHUNK_BYTES);
  t.equal(readBuffers.take(100).length, SMALL_READ_BYTES, 'a small read gets a small buffer');
  readBuffers.give(Buffer.alloc(READ_CHUNK_BYTES));
  t.not(readBuffers.take(READ_CHUNK_BYTES).buffer, readBuffers.take(READ_CHUNK_BYTES).buffer, 'a foreign buffer is not taken in');
});

t.test('a paused consumer has nothing read ahead of it; it reads on when resumed', async (t) => {
  const path = join(t.testdir(), 'blob');
  const bytes = randomBytes(4 * READ_CHUNK_BYTES);
  writeFileSync(path, bytes);
  const stream = new BlobReadStream({ path, start: 0, end: Infinity });
  const parts: Buffer[] = [];
  const first = new Promise<void>((resolve) =>
    stream.once('data', (chunk: Buffer) => {
      parts.push(Buffer.from(chunk));
      stream.pause();
      resolve();
    }),
  );
  await first;
  t.equal(parts[0]!.length, SMALL_READ_BYTES, 'the first read is small');
  await sleep(100);
  t.equal(stream.readableLength, 0, 'no chunk waits in the stream while its consumer is paused');
  stream.on('data', (chunk: Buffer) => parts.push(Buffer.from(chunk)));
  stream.resume();
  await new Promise((resolve) => stream.once('end', resolve));
  t.ok(Buffer.concat(parts).equals(bytes));
});

t.test('release drops the free buffers; one still out may be given back and is not reused twice', async (t) => {
  const kept = readBuffers.take(READ_CHUNK_BYTES);
  const out = readBuffers.take(READ_CHUNK_BYTES);
  readBuffers.give(kept);
  t.equal(readBuffers.take(READ_CHUNK_BYTES).buffer, kept.buffer, 'before release: the free buffer is reused');
  readBuffers.give(kept);
  readBuffers.release();
  t.not(readBuffers.take(READ_CHUNK_BYTES).buffer, kept.buffer, 'after release: a new one');
  readBuffers.give(out);
  t.equal(readBuffers.take(READ_CHUNK_BYTES).buffer, out.buffer, 'a buffer out during the release comes back into use');
});

t.test('a blob file longer than a stalled client can be sent is read small for its first bytes; a short one grows at once', async (t) => {
  const chunkSizes = async (bytes: number): Promise<number[]> => {
    const path = join(t.testdir(), `blob-${bytes}`);
    writeFileSync(path, randomBytes(bytes));
    const sizes: number[] = [];
    for await (const chunk of new BlobReadStream({ path, start: 0, end: Infinity })) sizes.push((chunk as Buffer).length);
    return sizes;
  };
  const long = await chunkSizes(SMALL_READS_BYTES + 3 * READ_CHUNK_BYTES);
  t.same(long.slice(0, SMALL_READS_BYTES / SMALL_READ_BYTES), Array(SMALL_READS_BYTES / SMALL_READ_BYTES).fill(SMALL_READ_BYTES));
  t.same((await chunkSizes(READ_CHUNK_BYTES)).slice(0, 3), [SMALL_READ_BYTES, 2 * SMALL_READ_BYTES, 4 * SMALL_READ_BYTES]);
});
