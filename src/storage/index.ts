import { readBuffers } from './blobs/read-buffers.js';
import { slabs } from '../buffers/index.js';
export type {
  BlobInfo,
  BlobRecord,
  BlobStore,
  BlobWriter,
  ByteSpan,
  StorageLog,
  ContentLinks,
  EnumerableBlobStore,
  DigestEntry,
  ManifestRecord,
  MetadataStore,
  MetadataWalker,
  RepositoryIndex,
  RepositoryLink,
  TagEntry,
  TagRecord,
  ReferrersRecord,
  ReferrersStore,
  TagStore,
} from './types.js';
export { DigestMismatchError, MetadataUnavailableError, SizeMismatchError, StorageError } from './errors.js';
export { FsBlobStore, type FsBlobStoreOptions } from './blobs/blob-store.js';
export { createVerifier, threadVerifier, verifierFor, type CreateVerifier, type Verifier } from './blobs/verifier.js';
export { failedStream } from './blobs/blob-read-stream.js';
export { FileKvStore, type FileKvStoreOptions, type SkippedLine } from './metadata/file-kv-store.js';
export { KeyvMetadataStore, type KeyvMetadataStoreOptions, type MetadataKvStore } from './metadata/metadata-store.js';
export { createRedisKvStore, type RedisKvStoreOptions } from './metadata/redis-kv-store.js';
export { tagLastUsed } from './metadata/metadata-records.js';
export { createKvBackend, createMetadataStore, type KvBackend, type KvBackendHooks } from './metadata/kv-backend.js';
export { listTempFiles, removeTempFile, type TempFile } from './blobs/temp-files.js';
export { StorageHealth, type DegradedState, type StorageHealthOptions } from './health.js';
export { isErrno } from './fs-util.js';
export { MemoryLeases, RedisLeases, type Lease, type LeaseClient, type Leases } from './leases.js';
export { storageLayout, type StorageLayout } from './layout.js';
export { diskSpace, type DiskSpace } from './disk-space.js';

/** An idle server's read buffers and download slabs, given back to the allocator (the next stream takes new ones). */
export function releaseReadBuffers(): void {
  readBuffers.release();
  slabs.drain();
}
