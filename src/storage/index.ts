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
