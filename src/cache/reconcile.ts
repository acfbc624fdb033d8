import type { Digest } from '../oci/index.js';
import type { IndexedBlob } from './cache-index.js';
import type { LoadedSnapshot } from './index-snapshot.js';
import type { BlobInfo } from '../storage/index.js';

export interface ReconcileResult {
  readonly blobs: IndexedBlob[];
  /** Files the snapshot did not list (committed after its last flush): stat'ed and kept. */
  readonly adopted: number;
  /** Listed but gone (deleted mid-eviction, or by hand): their metadata records must go too. */
  readonly dropped: Digest[];
}

/** Stats in flight at once while adopting: enough to hide latency, few enough not to hog the fs pool. */
const STAT_CONCURRENCY = 32;

/**
 * Makes the index agree with the files, cheaply: one directory listing per shard and a stat only for
 * files the snapshot does not know. A file under blobs/ is always complete and verified (the writer
 * renames it there only after the digest matched and the bytes were fsynced; partial bytes only ever
 * live in tmp/), so an unknown file is adopted rather than deleted or re-hashed.
 */
export async function reconcile(digests: readonly Digest[], snapshot: LoadedSnapshot | undefined, stat: (digest: Digest) => Promise<BlobInfo | undefined>): Promise<ReconcileResult> {
  const known = new Map<Digest, IndexedBlob>();
  for (const b of snapshot?.blobs ?? []) known.set(b.digest, b);
  const blobs: IndexedBlob[] = [];
  const unknown: Digest[] = [];
  for (const digest of digests) {
    const entry = known.get(digest);
    if (entry === undefined) unknown.push(digest);
    else {
      blobs.push(entry);
      known.delete(digest);
    }
  }
  // Newer than the snapshot, so at least as recent as its save; ordered among themselves by nothing better.
  const lastAccess = snapshot?.savedAt ?? 0;
  let adopted = 0;
  for (let i = 0; i < unknown.length; i += STAT_CONCURRENCY) {
    const infos = await Promise.all(unknown.slice(i, i + STAT_CONCURRENCY).map(stat));
    for (const info of infos) {
      if (info === undefined) continue;
      blobs.push({ digest: info.digest, size: info.size, lastAccess, repos: [] });
      adopted++;
    }
  }
  return { blobs, adopted, dropped: [...known.keys()] };
}
