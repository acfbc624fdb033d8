/** Why a replica fetched a blob from the upstream although a peer owns it. */
export type FallbackReason = 'unreachable' | 'refused' | 'broke' | 'mismatch';

/** A manifest this replica does not own, asked of its owner: `hit` it answered right, else why the upstream was asked instead. */
export type ManifestFetchOutcome = 'hit' | Exclude<FallbackReason, 'broke'>;

/** What the cluster reports for metrics; implemented in observability/. */
export interface ClusterObserver {
  /** A blob this replica does not own was asked of its owner: `hit` it answered, `miss` it could not. */
  peerFetch(outcome: 'hit' | 'miss'): void;
  /** Blob bytes downloaded by this replica, by where they came from. */
  blobBytes(from: 'peer' | 'upstream', bytes: number): void;
  /** The upstream stood in for the owner, and why (`broke`: mid-stream, resumed from upstream). */
  peerFallback(reason: FallbackReason): void;
  /** A peer's request for a blob this replica owns was answered (`ok`) or failed. */
  forwardedServed(outcome: 'ok' | 'error'): void;
  /** A manifest by digest asked of its owner (one upstream GET per manifest for the cluster). */
  manifestFetch(outcome: ManifestFetchOutcome): void;
  /** A peer's request for a manifest this replica owns was answered (`ok`) or failed. */
  forwardedManifest(outcome: 'ok' | 'error'): void;
}

