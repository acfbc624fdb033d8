import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { FsBlobWriter } from '../../src/storage/blobs/blob-writer.js';
import { FsBlobStore } from '../../src/storage/index.js';
import { digestOf, observe, settle } from '../fixtures/blob-streams.js';

// Clients need not wait for the disk: a chunk is readable by followers the moment it is written to
// the writer, and stays in memory until it is on disk. White box: the writer's file writes are held
// at a gate the test opens.

const KiB = 1024;
const MiB = 1024 * KiB;

async function gatedWriter(root: string, bytes: Buffer): Promise<{ writer: FsBlobWriter; close: () => void; open: () => void }> {
  const blobs = new FsBlobStore({ root });
  await blobs.recover();
  const writer = (await blobs.begin(digestOf(bytes), bytes.length)) as FsBlobWriter;
  const handle: FileHandle = writer.handle;
  const writev = handle.writev.bind(handle);
  let gate: Promise<void> = Promise.resolve();
  let release = (): void => {};
  handle.writev = (async (buffers: NodeJS.ArrayBufferView[], position?: number) => {
    await gate;
    return writev(buffers, position);
  }) as FileHandle['writev'];
  return {
    writer,
    close: () => void (gate = new Promise((resolve) => (release = resolve))),
    open: () => release(),
  };
}

function chunksOf(bytes: Buffer, from: number, to: number, size = 256 * KiB): Buffer[] {
  const out: Buffer[] = [];
  for (let off = from; off < to; off += size) out.push(bytes.subarray(off, Math.min(off + size, to)));
  return out;
}

t.test('a follower gets bytes before they are on disk', async (t) => {
  const bytes = randomBytes(MiB + 5);
  const { writer, close, open } = await gatedWriter(t.testdir(), bytes);
  const seen = observe(writer.follow());
  close();
  const first = chunksOf(bytes, 0, 512 * KiB).map((c) => writer.write(c));
  await settle();
  t.equal(seen.bytes, 256 * KiB, 'every byte written so far but the newest chunk reached the follower');
  t.equal(writer.fileEnd(), 0, 'while none of them is on disk');
  let settled = false;
  void Promise.all(first).then(() => (settled = true));
  await settle();
  t.equal(settled, false, 'the writes settle only once on disk');
  open();
  await Promise.all(first);
  t.equal(writer.fileEnd(), 512 * KiB);
  for (const c of chunksOf(bytes, 512 * KiB, bytes.length)) await writer.write(c);
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes), 'the whole blob, in order');
});

t.test('a follower that fell behind reads back what is on disk, then takes the rest from memory', async (t) => {
  const bytes = randomBytes(8 * MiB);
  const { writer, close, open } = await gatedWriter(t.testdir(), bytes);
  for (const c of chunksOf(bytes, 0, 6 * MiB)) await writer.write(c);
  close();
  const pending = chunksOf(bytes, 6 * MiB, 7 * MiB).map((c) => writer.write(c));
  const late = observe(writer.follow());
  await late.until(() => late.bytes >= 7 * MiB - 256 * KiB);
  t.equal(late.bytes, 7 * MiB - 256 * KiB, 'the first 6 MiB from the file, the next from memory (but the newest chunk)');
  t.equal(writer.fileEnd(), 6 * MiB, 'the last MiB is still not on disk');
  t.ok(late.body().equals(bytes.subarray(0, 7 * MiB - 256 * KiB)), 'the right bytes');
  open();
  await Promise.all(pending);
  for (const c of chunksOf(bytes, 7 * MiB, bytes.length)) await writer.write(c);
  await writer.commit();
  await late.settled;
  t.ok(late.body().equals(bytes));
});

t.test('chunks that continue each other in one slab reach followers joined', async (t) => {
  const bytes = randomBytes(MiB / 2 + 1);
  const { writer } = await gatedWriter(t.testdir(), bytes);
  for (const c of chunksOf(bytes, 0, MiB / 2, 16 * KiB)) await writer.write(c);
  const piece = writer.recentChunk(0);
  t.equal(piece?.buf.length, MiB / 2, '32 writes of 16 KiB, one piece');
  await writer.write(bytes.subarray(MiB / 2));
  await writer.commit();
});
