import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { BlobCache } from '../../src/cache/index.js';
import { FsBlobStore, StorageHealth } from '../../src/storage/index.js';
import { storageLayout } from '../../src/storage/layout.js';
import { blobStoreContract } from '../fixtures/blob-store-contract.js';
import { digestOf } from '../fixtures/blob-streams.js';

async function blobCache(t: Test, maxSize = 1024 * 1024): Promise<{ cache: BlobCache; root: string }> {
  const root = t.testdir();
  const log = (): void => {};
  const cache = new BlobCache({
    store: new FsBlobStore({ root }),
    root,
    maxSize,
    isPinned: () => false,
    observer: { cacheSize() {}, evicted() {} },
    health: new StorageHealth({ root, log }),
    forget: async () => {},
    log,
  });
  await cache.recover();
  t.teardown(() => cache.close());
  return { cache, root };
}

t.test('the BlobStore contract', async (t) => {
  blobStoreContract(t, async (t) => {
    const { cache, root } = await blobCache(t);
    return {
      store: cache,
      // Every new temp file (and the writability probe) fails: storage is degraded.
      refuse: async () => {
        const tmp = storageLayout(root).tmpDir;
        rmSync(tmp, { recursive: true });
        writeFileSync(tmp, 'not a directory');
      },
    };
  });
});

t.test('a blob larger than the whole budget gets no writer; one that fits does', async (t) => {
  const { cache } = await blobCache(t, 1000);
  const big = randomBytes(1001);
  t.equal(await cache.begin(digestOf(big), big.length), undefined, 'over budget: not cached now');
  const small = randomBytes(1000);
  const writer = await cache.begin(digestOf(small), small.length);
  t.ok(writer, 'within budget: a writer');
  await writer?.abort(new Error('done'));
});

t.test('why a blob is refused, in the config terms and units', async (t) => {
  const { cache, root } = await blobCache(t, 10 * 1024 * 1024);
  t.equal(await cache.explainRefusal(11 * 1024 * 1024), 'blob 11 MiB does not fit in storage.maxSize 10 MiB; 0 B pinned');
  t.equal(await cache.explainRefusal(undefined), 'no room for blob of unknown size now: other downloads hold the rest of storage.maxSize, or the disk is full down to storage.minFree');
  const tmp = storageLayout(root).tmpDir;
  rmSync(tmp, { recursive: true });
  writeFileSync(tmp, 'not a directory');
  t.equal(await cache.begin(digestOf(randomBytes(10)), 10), undefined, 'degraded: no writer');
  t.match(await cache.explainRefusal(10), /^the storage is not taking writes \(E[A-Z]+\)$/);
});
