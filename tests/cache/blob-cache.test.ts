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
