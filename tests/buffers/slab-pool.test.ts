import t from 'tap';
import { randomBytes } from 'node:crypto';
import { SLAB_BYTES, SlabPool } from '../../src/buffers/slab-pool.js';

const CHUNK = 64 * 1024;
const PER_SLAB = SLAB_BYTES / CHUNK;

/** Copies enough chunks to fill `slabs` slabs, keeping each view's expected bytes. */
function fill(pool: SlabPool, slabs: number): Array<{ view: Buffer; bytes: Buffer }> {
  const out: Array<{ view: Buffer; bytes: Buffer }> = [];
  for (let i = 0; i < slabs * PER_SLAB; i++) {
    const bytes = randomBytes(CHUNK);
    out.push({ view: pool.copy(bytes), bytes });
  }
  return out;
}

t.test('a copy holds the bytes, not the caller buffer', async (t) => {
  const pool = new SlabPool();
  const source = randomBytes(1000);
  const view = pool.copy(source);
  const expected = Buffer.from(source);
  source.fill(0);
  t.ok(view.equals(expected));
  t.equal(view.buffer.byteLength, SLAB_BYTES, 'a view of a slab');
});

t.test('a slab is reused once every view of it was released and the pool moved on', async (t) => {
  const pool = new SlabPool();
  const first = fill(pool, 1);
  const slab = first[0]!.view.buffer;
  for (const { view } of first) pool.release(view);
  t.equal(pool.freeCount, 0, 'still being filled: not free yet');
  t.equal(pool.copy(randomBytes(CHUNK)).buffer, slab, 'full, it is the next slab filled: still warm in the cache');
  const held = first[0]!.view;
  pool.retain(held);
  t.not(pool.copy(randomBytes(SLAB_BYTES)).buffer, slab, 'not while a view of it is held');
});

t.test('a view still held keeps its slab from being reused, however much is copied after it', async (t) => {
  const pool = new SlabPool();
  const first = fill(pool, 1);
  const [kept, ...rest] = first;
  for (const { view } of rest) pool.release(view);
  for (let round = 0; round < 20; round++) for (const { view } of fill(pool, 2)) pool.release(view);
  t.ok(kept!.view.equals(kept!.bytes), 'the held view was never overwritten');
  t.ok(pool.freeCount > 0, 'the other slabs were reused meanwhile');
});

t.test('retain adds a holder: the slab waits for both releases', async (t) => {
  const pool = new SlabPool();
  const first = fill(pool, 1);
  pool.retain(first[0]!.view);
  for (const { view } of first) pool.release(view);
  pool.copy(randomBytes(CHUNK));
  t.equal(pool.freeCount, 0, 'one holder left');
  pool.release(first[0]!.view);
  t.equal(pool.freeCount, 1);
});

t.test('a release too many never frees a slab another holder still reads', async (t) => {
  const pool = new SlabPool();
  const first = fill(pool, 1);
  const [a, b] = first;
  // a is released three times, b never: the slab must stay taken.
  for (const { view } of first.slice(2)) pool.release(view);
  pool.release(a!.view);
  pool.release(a!.view);
  pool.release(a!.view);
  pool.copy(randomBytes(CHUNK));
  for (let round = 0; round < 10; round++) for (const { view } of fill(pool, 2)) pool.release(view);
  t.ok(b!.view.equals(b!.bytes));
});

t.test('foreign buffers are ignored by retain and release', async (t) => {
  const pool = new SlabPool();
  const foreign = Buffer.alloc(CHUNK);
  pool.retain(foreign);
  pool.release(foreign);
  t.equal(pool.freeCount, 0);
  t.ok(pool.copy(Buffer.alloc(0)).buffer !== pool.copy(Buffer.alloc(1)).buffer, 'an empty copy takes no slab');
  const large = randomBytes(SLAB_BYTES + 1);
  const copied = pool.copy(large);
  t.ok(copied.equals(large) && copied.buffer.byteLength !== SLAB_BYTES, 'larger than a slab: a plain copy');
});

t.test('join merges neighbours in one slab into one view holding one reference', async (t) => {
  const pool = new SlabPool();
  const a = pool.copy(randomBytes(100));
  const b = pool.copy(randomBytes(200));
  const foreign = randomBytes(50);
  const c = pool.copy(randomBytes(300));
  const joined = pool.join([a, b, foreign, c]);
  t.equal(joined.length, 3);
  t.ok(joined[0]!.equals(Buffer.concat([a, b])));
  t.equal(joined[1], foreign);
  t.equal(joined[2], c);
  // Two references left (the joined view and c) plus the filling one.
  pool.release(joined[0]!);
  pool.release(c);
  t.equal(pool.copy(randomBytes(SLAB_BYTES)).buffer, a.buffer, 'no reference was lost or left over in the join: the slab came back at once');
});

t.test('drain gives the free slabs and an unused current one back', async (t) => {
  const pool = new SlabPool();
  for (const { view } of fill(pool, 3)) pool.release(view);
  const held = pool.copy(randomBytes(CHUNK));
  t.ok(pool.freeCount >= 2);
  pool.drain();
  t.equal(pool.freeCount, 0);
  t.ok(held.length === CHUNK, 'a view still held stays valid');
  pool.release(held);
  t.equal(pool.copy(randomBytes(CHUNK)).buffer, held.buffer, 'the slab being filled when drained, still in use then, goes on being filled');
  t.equal(pool.freeCount, 0);
});

t.test('a reader: reads land in slabs of its own, and a held view keeps its slab from reuse', async (t) => {
  const pool = new SlabPool();
  const reader = pool.reader();
  const space = reader.space();
  t.equal(space.length, SLAB_BYTES, 'the first read may fill a whole slab');
  const bytes = randomBytes(1000);
  bytes.copy(space);
  const landed = reader.landed(bytes.length);
  t.ok(landed.equals(bytes));
  const held = reader.hold(landed.subarray(10, 20));
  t.equal(pool.adopt(held), held, 'a held view is taken over, not copied');
  t.equal(reader.space().byteOffset, space.byteOffset + 1000, 'the next read lands after the last');
  t.not(pool.copy(randomBytes(10)).buffer, space.buffer, 'a copy never lands in a slab a socket is reading into');
  t.throws(() => reader.landed(SLAB_BYTES), RangeError, 'more than the space given is a bug, not a silent overrun');
  t.throws(() => reader.hold(randomBytes(4)), RangeError, 'only views of its slabs are held');

  // Fill the rest of the slab: under 64 KiB left, the reader moves to a fresh one.
  reader.landed(reader.space().length - 1000);
  t.not(reader.space().buffer, space.buffer, 'a nearly full slab is left behind');
  reader.close();
  const free = pool.freeCount;
  t.equal(free, 1, 'the slab it moved to is free at once: nothing of it was held');
  pool.release(held);
  t.equal(pool.freeCount, free + 1, 'the first slab only once the last view of it was released');
  t.equal(pool.copy(randomBytes(SLAB_BYTES)).buffer, space.buffer, 'and then it is reused');
});

t.test('adopt copies what is not a held view of the pool', async (t) => {
  const pool = new SlabPool();
  const foreign = randomBytes(100);
  const adopted = pool.adopt(foreign);
  t.not(adopted, foreign);
  t.ok(adopted.equals(foreign));
  pool.release(adopted);
  t.not(pool.adopt(adopted), adopted, 'a view released is no longer held: copied');
});
