import t from 'tap';
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../../src/oci/index.js';
import { CacheIndex } from '../../src/cache/index.js';

const digest = (n: number): Digest => parseDigest(`sha256:${createHash('sha256').update(String(n)).digest('hex')}`);

/** An index whose deletions are recorded (the file side is covered by the HTTP tests). */
function index(maxSize: number, pinned: readonly string[] = []) {
  const deleted: Digest[] = [];
  const sizes: Array<[number, number]> = [];
  const evicted: number[] = [];
  let clock = 1000;
  const idx = new CacheIndex({
    maxSize,
    isPinned: (key) => pinned.includes(key),
    deleteBlob: async (d) => void deleted.push(d),
    observer: { cacheSize: (bytes, blobs) => sizes.push([bytes, blobs]), evicted: (bytes) => evicted.push(bytes) },
    onDeleteError: () => {},
    now: () => clock++,
  });
  return { idx, deleted, sizes, evicted };
}

t.test('reserve makes room from the LRU end, skipping readers and pins; refuses what cannot fit', async (t) => {
  const { idx, deleted, evicted } = index(100, ['docker.io/team/pinned']);
  idx.addRepository('docker.io/team/pinned', [digest(1)]);
  for (let i = 1; i <= 4; i++) idx.add(digest(i), 25);
  t.equal(idx.pinnedBytes, 25);
  idx.acquire(digest(2));
  const r = await idx.reserve(30);
  t.ok(r, 'room was made');
  t.same(deleted, [digest(3), digest(4)], 'pinned 1 and read 2 were passed over');
  t.same(evicted, [25, 25]);
  t.equal(await idx.reserve(60), undefined, 'only 20 bytes could be freed: refused, nothing evicted');
  t.same(deleted.length, 2);
  t.equal(await idx.reserve(101), undefined, 'larger than the budget');
  r?.release();
  r?.release();
  t.equal(idx.reserved, 0, 'release is idempotent');
  t.equal(await idx.remove(digest(2)), 'in-use');
  t.equal(await idx.remove(digest(1)), 'pinned');
  idx.release(digest(2));
  t.equal(await idx.remove(digest(2)), 'removed');
  t.equal(await idx.remove(digest(1), { force: true }), 'removed');
  t.equal(idx.bytes, 0);
});

t.test('a commit without a reservation that overshoots evicts; one bigger than the budget leaves after its last reader', async (t) => {
  const { idx, deleted } = index(100);
  idx.add(digest(1), 60);
  idx.add(digest(2), 60);
  t.same(deleted, [digest(1)], 'over budget after an unreserved commit: the oldest goes');
  idx.acquire(digest(3));
  idx.add(digest(3), 150);
  t.ok(idx.has(digest(3)), 'kept while its follower reads');
  t.equal(idx.bytes, 210);
  idx.release(digest(3));
  await idx.settled();
  t.notOk(idx.has(digest(3)), 'gone once the reader left');
  t.ok(deleted.includes(digest(3)));
});

t.test('touch reorders; snapshot and load keep the order and the repositories', async (t) => {
  const { idx } = index(1000);
  for (let i = 1; i <= 3; i++) idx.add(digest(i), 10);
  idx.addRepository('docker.io/team/app', [digest(2)]);
  idx.touch(digest(1));
  t.ok(idx.dirty);
  const snap = idx.snapshot();
  t.notOk(idx.dirty);
  t.same(snap.map((b) => b.digest), [digest(2), digest(3), digest(1)]);
  t.same(snap[0]?.repos, ['docker.io/team/app']);
  const { idx: loaded, deleted } = index(25, ['docker.io/team/app']);
  loaded.load([...snap].reverse());
  t.equal(loaded.pinnedBytes, 10, 'repositories come back, so pins apply after a restart');
  loaded.enforce();
  t.same(deleted, [digest(3)], 'the oldest unpinned blob goes when the budget shrank');
});
