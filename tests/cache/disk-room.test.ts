import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { BlobCache } from '../../src/cache/index.js';
import type { SpaceFloor } from '../../src/config/index.js';
import { FsBlobStore, StorageHealth, type BlobWriter, type DiskSpace } from '../../src/storage/index.js';
import type { FsBlobWriter } from '../../src/storage/blobs/blob-writer.js';
import type { Digest } from '../../src/oci/index.js';
import { digestOf, observe } from '../fixtures/blob-streams.js';

// The disk as a second limit beside storage.maxSize, in process: the file system's answer is the
// test's (statfs of a real small disk is in disk-smaller-than-budget.test.ts).

interface Lines {
  readonly lines: Array<{ level: string; message: string; fields: Record<string, unknown> }>;
  warns(re: RegExp): number;
}

interface Setup {
  readonly cache: BlobCache;
  readonly disk: { free: number; size: number; fails: boolean };
  readonly log: Lines;
  readonly health: StorageHealth;
  advance(ms: number): void;
}

async function setUp(t: Test, options: { maxSize?: number; minFree?: SpaceFloor; free?: number } = {}): Promise<Setup> {
  const root = t.testdir();
  const disk = { free: options.free ?? 10_000, size: 100_000, fails: false };
  const lines: Lines['lines'] = [];
  const log = (level: string, fields: Record<string, unknown>, message: string): void => void lines.push({ level, message, fields });
  let now = 1_000_000;
  const health = new StorageHealth({ root, log });
  const cache = new BlobCache({
    store: new FsBlobStore({ root }),
    root,
    maxSize: options.maxSize ?? 1_000_000,
    minFree: options.minFree ?? { kind: 'bytes', bytes: 0 },
    diskSpace: async (): Promise<DiskSpace> => {
      if (disk.fails) throw Object.assign(new Error('statfs failed'), { code: 'EIO' });
      return { free: disk.free, size: disk.size };
    },
    isPinned: () => false,
    observer: { cacheSize() {}, evicted() {} },
    health,
    forget: async () => {},
    log,
    now: () => now,
  });
  await cache.recover();
  t.teardown(() => cache.close());
  return { cache, disk, health, log: { lines, warns: (re) => lines.filter((l) => l.level === 'warn' && re.test(l.message)).length }, advance: (ms) => (now += ms) };
}

/** A cache write begun for `size` random bytes, with room to spare. */
async function begun(s: Setup, size: number): Promise<{ bytes: Buffer; digest: Digest; writer: BlobWriter }> {
  const bytes = randomBytes(size);
  const digest = digestOf(bytes);
  const writer = await s.cache.begin(digest, bytes.length);
  if (writer === undefined) throw new Error('expected a writer');
  return { bytes, digest, writer };
}

/** White box: the temp file's next writes fail with ENOSPC, which the code classifies by its errno. */
function diskFullFromNow(writer: BlobWriter): void {
  const handle = (writer as unknown as { inner: FsBlobWriter }).inner.handle;
  handle.writev = (async () => {
    throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  }) as typeof handle.writev;
}

async function commit(writer: BlobWriter | undefined, bytes: Buffer): Promise<void> {
  if (writer === undefined) throw new Error('expected a writer');
  await writer.write(bytes);
  await writer.commit();
}

t.test('a blob larger than the free disk gets no writer, once remembered; the disk making room lets it in', async (t) => {
  const s = await setUp(t, { free: 10_000, minFree: { kind: 'bytes', bytes: 1000 } });
  const big = randomBytes(9_500);
  const digest = digestOf(big);
  t.equal(await s.cache.begin(digest, big.length), undefined, '9,500 bytes do not fit in 10,000 free less 1,000 kept');
  t.equal(await s.cache.begin(digest, big.length), undefined, 'nor the second time');
  t.equal(s.log.warns(/no room on the disk/), 1, 'one warning');
  t.match(await s.cache.diskLimit(), /^no room on the disk for 1 blob\(s\), the largest 9\.3 KiB: serving them without caching \(9\.8 KiB free, storage\.minFree keeps 1000 B\)$/);
  s.disk.free = 20_000;
  t.equal(await s.cache.diskLimit(), undefined, 'no longer the limit once the disk has room');
  const writer = await s.cache.begin(digest, big.length);
  t.ok(writer, 'and the next pull caches');
  await commit(writer, big);
});

t.test('a share of the disk as the floor', async (t) => {
  const s = await setUp(t, { free: 10_000, minFree: { kind: 'percent', percent: 5 } });
  const bytes = randomBytes(5_001);
  t.equal(await s.cache.begin(digestOf(bytes), bytes.length), undefined, '5% of 100,000 is 5,000: 5,001 does not fit');
  const fits = randomBytes(5_000);
  const writer = await s.cache.begin(digestOf(fits), fits.length);
  t.ok(writer);
  await commit(writer, fits);
});

t.test('the cache evicts least recently used blobs to make room on the disk', async (t) => {
  const s = await setUp(t, { free: 10_000 });
  const old = randomBytes(6_000);
  await commit(await s.cache.begin(digestOf(old), old.length), old);
  s.disk.free = 4_000;
  const next = randomBytes(8_000);
  const writer = await s.cache.begin(digestOf(next), next.length);
  t.ok(writer, 'room made by evicting the older blob');
  t.equal(await s.cache.stat(digestOf(old)), undefined, 'evicted');
  await commit(writer, next);
  t.equal(s.log.warns(/no room/), 0);
});

t.test('writes in flight count against the room they will still take', async (t) => {
  const s = await setUp(t, { free: 10_000 });
  const a = randomBytes(6_000);
  const first = await s.cache.begin(digestOf(a), a.length);
  t.ok(first);
  const b = randomBytes(6_000);
  t.equal(await s.cache.begin(digestOf(b), b.length), undefined, 'the first download will still write 6,000 bytes');
  await commit(first, a);
});

t.test('a blob of unknown size is not begun on a disk already at its floor', async (t) => {
  const s = await setUp(t, { free: 500, minFree: { kind: 'bytes', bytes: 1000 } });
  t.equal(await s.cache.begin(digestOf(randomBytes(10)), undefined), undefined);
  s.disk.free = 5_000;
  const bytes = randomBytes(10);
  t.ok(await s.cache.begin(digestOf(bytes), undefined), 'once above it, it is');
});

t.test('statfs failing does not stop caching (the writes meet the disk themselves)', async (t) => {
  const s = await setUp(t, { free: 0 });
  s.disk.fails = true;
  const bytes = randomBytes(100);
  const writer = await s.cache.begin(digestOf(bytes), bytes.length);
  t.ok(writer);
  await commit(writer, bytes);
});

t.test('the disk filling mid-write: the blob is held from the disk for a while, then retried', async (t) => {
  const s = await setUp(t, { free: 100_000 });
  const { bytes, digest, writer } = await begun(s, 50_000);
  const seen = observe(writer.follow());
  await writer.write(bytes.subarray(0, 10_000));
  diskFullFromNow(writer);
  await writer.write(bytes.subarray(10_000));
  t.same(await writer.commit(), { digest, size: bytes.length });
  await seen.settled;
  t.ok(seen.body().equals(bytes));
  t.equal(await s.cache.stat(digest), undefined, 'not cached');
  t.equal(s.log.warns(/ran out of room mid-download/), 1);
  t.equal(s.health.degraded, undefined, 'a full disk is not "not writable": no flapping');
  t.equal(await s.cache.begin(digest, bytes.length), undefined, 'held though statfs shows room: it showed room last time too');
  t.match(await s.cache.diskLimit(), /^no room on the disk for 1 blob/);
  s.advance(61_000);
  t.equal(await s.cache.diskLimit(), undefined, 'past the pause, statfs is trusted again');
  const again = await s.cache.begin(digest, bytes.length);
  t.ok(again, 'and the blob is tried again');
  await commit(again, bytes);
});

t.test('a remembered blob is forgotten after ten quiet minutes', async (t) => {
  const s = await setUp(t, { free: 1_000 });
  const big = randomBytes(2_000);
  t.equal(await s.cache.begin(digestOf(big), big.length), undefined);
  t.ok(await s.cache.diskLimit());
  s.advance(10 * 60_000 + 1);
  t.equal(await s.cache.diskLimit(), undefined);
});

t.test('another write error mid-download: streamed on, reported, not remembered as too big', async (t) => {
  const s = await setUp(t, { free: 100_000 });
  const { bytes, digest, writer } = await begun(s, 20_000);
  const seen = observe(writer.follow());
  await writer.write(bytes.subarray(0, 5_000));
  await (writer as unknown as { inner: FsBlobWriter }).inner.handle.close();
  await writer.write(bytes.subarray(5_000));
  await writer.commit();
  await seen.settled;
  t.ok(seen.body().equals(bytes));
  t.equal(s.log.warns(/writing to the cache failed mid-download/), 1, 'EBADF: an I/O failure, said once');
  t.equal(await s.cache.diskLimit(), undefined, 'the disk is not the limit');
  t.ok(await s.cache.begin(digest, bytes.length), 'the next pull tries the cache again');
});

t.test('the disk filling with nobody following (a sync): the write fails, remembered as too big, storage not "unwritable"', async (t) => {
  const s = await setUp(t, { free: 100_000 });
  const { bytes, digest, writer } = await begun(s, 20_000);
  await writer.write(bytes.subarray(0, 5_000));
  diskFullFromNow(writer);
  await t.rejects(writer.write(bytes.subarray(5_000)), /no client follows it/);
  t.equal(s.health.degraded, undefined);
  t.equal(s.log.warns(/ran out of room mid-download/), 1);
  t.equal(await s.cache.begin(digest, bytes.length), undefined, 'held');
});
