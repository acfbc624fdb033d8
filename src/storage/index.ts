export type {
  BlobInfo,
  BlobRecord,
  BlobStore,
  BlobWriter,
  ByteSpan,
  DigestEntry,
  ManifestRecord,
  MetadataStore,
  TagEntry,
  TagRecord,
} from './types.js';
export { DigestMismatchError, MetadataUnavailableError, SizeMismatchError, StorageError } from './errors.js';
export { FsBlobStore, type FsBlobStoreOptions } from './blob-store.js';
export { FileKvStore, type FileKvStoreOptions, type SkippedLine } from './file-kv-store.js';
export { KeyvMetadataStore, type KeyvMetadataStoreOptions, type MetadataKvStore } from './metadata-store.js';
export { createRedisKvStore, type RedisKvStoreOptions } from './redis-kv-store.js';
export { createMetadataStore } from './metadata-from-config.js';
export { listTempFiles, removeTempFile, type TempFile } from './temp-files.js';
export { BlobCache, PinBudgetError, type BlobCacheOptions, type CacheLog, type RecoverReport } from './blob-cache.js';
export { CacheIndex, type CacheIndexObserver, type IndexedBlob, type RemoveResult, type Reservation } from './cache-index.js';
export { RecencyFile } from './recency.js';
export { DegradableFileKvStore } from './degradable-kv-store.js';
export { StorageHealth, isDiskError, type DegradedState, type StorageHealthOptions } from './storage-health.js';
export { UncachedWriter } from './uncached-writer.js';
export { chunkRecycler, type ChunkRecycler } from './read-buffers.js';
