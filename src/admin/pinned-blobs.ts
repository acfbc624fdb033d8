import type { Digest } from '../oci/index.js';
import { IndexSnapshot } from '../cache/index.js';

/**
 * The blobs pins protect, asked once per `cache gc`/`prune`: gc keeps them as eviction does, even
 * when no tag reaches them (a tag moved, or content pulled by digest into a pinned repository).
 */
export type PinnedBlobs = () => Promise<ReadonlySet<Digest>>;

/**
 * For a process alone on the storage: which repositories reference a blob is known only from the
 * cache index snapshot the last server left, and a blob is pinned when any of them is, the same
 * rule the cache index applies to decide what eviction may take.
 */
export function pinnedInSnapshot(root: string, isPinnedRepository: (repoKey: string) => boolean): PinnedBlobs {
  return async () => {
    const snapshot = await new IndexSnapshot(root).load();
    return new Set((snapshot?.blobs ?? []).filter((b) => b.repos.some(isPinnedRepository)).map((b) => b.digest));
  };
}
