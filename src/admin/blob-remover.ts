import type { Digest } from '../oci/index.js';
import type { BlobStore, MetadataWalker } from '../storage/index.js';

/**
 * The one way the admin commands delete a blob. The default removes the file and, unless other
 * replicas share the metadata, its record. Eviction's safe remove (which refuses a blob being
 * read, written or pinned) is meant to implement this same interface and be passed in its place.
 */
export interface BlobRemover {
  /** True if this call removed the blob; false if it was absent or refused. */
  remove(digest: Digest): Promise<boolean>;
}

export class FileBlobRemover implements BlobRemover {
  constructor(
    private readonly store: BlobStore,
    private readonly metadata: MetadataWalker,
  ) {}

  async remove(digest: Digest): Promise<boolean> {
    const removed = await this.store.delete(digest);
    // A shared (Redis) record says which upstreams hold the digest, true for every replica: keep it.
    if (removed && !this.metadata.shared) await this.metadata.deleteBlob(digest);
    return removed;
  }
}
