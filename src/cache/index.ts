export { BlobCache, PinBudgetError, type BlobCacheOptions, type RecoverReport } from './blob-cache.js';
export { CacheIndex, type CacheIndexObserver, type IndexedBlob, type RemoveResult, type Reservation } from './cache-index.js';
export { IndexSnapshot } from './index-snapshot.js';
export { PinFile } from './pin-file.js';
