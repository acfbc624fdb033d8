import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { openSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { BlobReadStream } from '../../src/storage/blobs/blob-read-stream.js';
import { READ_CHUNK_BYTES } from '../../src/storage/blobs/read-buffers.js';
import { StorageError } from '../../src/storage/index.js';

const SIZE = 5 * READ_CHUNK_BYTES + 12345;

function fixture(t: Test): { path: string; bytes: Buffer } {
  const path = join(t.testdir(), 'blob');
  const bytes = randomBytes(SIZE);
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** Reads everything, copying each chunk before (optionally) handing it back, as a socket write would. */
async function drain(stream: BlobReadStream, recycle: boolean): Promise<{ bytes: Buffer; buffers: Set<ArrayBufferLike>; chunks: number }> {
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let chunks = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    chunks += 1;
    buffers.add(buf.buffer);
    parts.push(Buffer.from(buf));
    if (recycle) stream.recycle(buf);
  }
  return { bytes: Buffer.concat(parts), buffers, chunks };
}

t.test('reads the whole file and spans of it, with or without recycling', async (t) => {
  const { path, bytes } = fixture(t);
  for (const recycle of [false, true]) {
    const whole = await drain(new BlobReadStream({ path, start: 0, end: Infinity }), recycle);
    t.ok(whole.bytes.equals(bytes), `whole file (recycle ${recycle})`);
    const span = await drain(new BlobReadStream({ path, fd: openSync(path, 'r'), start: 777, end: 3 * READ_CHUNK_BYTES + 5 }), recycle);
    t.ok(span.bytes.equals(bytes.subarray(777, 3 * READ_CHUNK_BYTES + 5)), `span (recycle ${recycle})`);
  }
});

t.test('a recycling consumer makes the stream reuse its buffers; others get fresh ones', async (t) => {
  const { path } = fixture(t);
  const plain = await drain(new BlobReadStream({ path, start: 0, end: Infinity }), false);
  t.equal(plain.buffers.size, plain.chunks, 'every chunk has its own memory');
  const recycled = await drain(new BlobReadStream({ path, start: 0, end: Infinity }), true);
  t.ok(recycled.buffers.size <= 2, `recycled chunks reuse memory (${recycled.buffers.size} buffers for ${recycled.chunks} chunks)`);
});

t.test('foreign buffers handed to recycle() are ignored', async (t) => {
  const { path, bytes } = fixture(t);
  const stream = new BlobReadStream({ path, start: 0, end: Infinity });
  const parts: Buffer[] = [];
  for await (const chunk of stream) {
    parts.push(Buffer.from(chunk as Buffer));
    stream.recycle(Buffer.alloc(READ_CHUNK_BYTES));
    stream.recycle((chunk as Buffer).subarray(0, 10));
  }
  t.ok(Buffer.concat(parts).equals(bytes));
});

t.test('a file shorter than the span is an error, not a clean short end', async (t) => {
  const { path } = fixture(t);
  const stream = new BlobReadStream({ path, start: 0, end: SIZE + 1 });
  await t.rejects(drain(stream, true), StorageError);
});

t.test('a missing file is a StorageError', async (t) => {
  const stream = new BlobReadStream({ path: join(t.testdir(), 'absent'), start: 0, end: Infinity });
  await t.rejects(drain(stream, false), StorageError);
});

t.test('destroyed mid-read, it closes and hands out nothing more', async (t) => {
  const { path } = fixture(t);
  const stream = new BlobReadStream({ path, start: 0, end: Infinity });
  stream.once('data', () => stream.destroy());
  await once(stream, 'close');
  t.ok(stream.destroyed);
});

t.test('a small file read whole is one chunk of its own size, not a slice of a 1 MiB read buffer', async (t) => {
  const path = join(t.testdir(), 'small');
  const bytes = randomBytes(10_000);
  writeFileSync(path, bytes);
  const read = await drain(new BlobReadStream({ path, start: 0, end: Infinity }), false);
  t.ok(read.bytes.equals(bytes));
  t.equal(read.chunks, 1);
  const [memory] = [...read.buffers];
  t.ok(memory !== undefined && memory.byteLength < READ_CHUNK_BYTES, `the chunk holds ${memory?.byteLength} bytes of memory`);
});
