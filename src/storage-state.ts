import type { BlobCache } from './cache/index.js';
import type { StorageStatus } from './observability/index.js';
import { parseDigest } from './oci/index.js';
import type { MetadataStore, StorageHealth } from './storage/index.js';

// What readiness and the status page say about storage: from its health and the cache's disk limit.

/** A key no blob has: reading it is a round trip to the metadata store that changes nothing. */
const METADATA_PROBE = parseDigest(`sha256:${'0'.repeat(64)}`);

/** The readiness checks of the storage: blobs and metadata. */
export function storageChecks(health: StorageHealth, cache: BlobCache, metadata: MetadataStore): { name: string; run: () => Promise<{ degraded: string } | undefined> }[] {
  return [
    // Never "not ready": with storage full or read-only every pull is still served from upstream.
    { name: 'storage', run: async () => storageReadiness(health, cache) },
    { name: 'metadata', run: async () => void (await metadata.getBlob(METADATA_PROBE)) },
  ];
}

/** Degraded, not unready: while storage is unwritable or the disk is the limit, pulls stream without caching. */
export async function storageReadiness(health: StorageHealth, cache: BlobCache): Promise<{ degraded: string } | undefined> {
  if (!(await health.probe())) return { degraded: `not writable (${health.degraded?.reason ?? 'unknown'}): serving without caching` };
  const limit = await cache.diskLimit();
  return limit === undefined ? undefined : { degraded: limit };
}

export function storageStatus(health: StorageHealth, cache: BlobCache, diskLimit: string | undefined): StorageStatus {
  const degraded = health.degraded;
  return {
    state: degraded || diskLimit ? 'degraded' : 'ok',
    reason: degraded?.reason ?? diskLimit ?? null,
    degradedSince: degraded ? new Date(degraded.since).toISOString() : null,
    pinnedBytes: cache.pinnedBytes,
  };
}
