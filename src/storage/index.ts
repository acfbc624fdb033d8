export type {
  BlobInfo,
  BlobRecord,
  BlobStore,
  BlobWriter,
  ByteSpan,
  ManifestRecord,
  MetadataStore,
  TagRecord,
} from './types.js';
export { DigestMismatchError, SizeMismatchError, StorageError } from './errors.js';
export { FsBlobStore, type FsBlobStoreOptions } from './blob-store.js';
export { FileKvStore, type FileKvStoreOptions, type SkippedLine } from './file-kv-store.js';
export { KeyvMetadataStore, type KeyvMetadataStoreOptions, type MetadataKvStore } from './metadata-store.js';
export { chunkRecycler, type ChunkRecycler } from './read-buffers.js';
