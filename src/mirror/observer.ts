import type { Digest } from '../oci/index.js';

/**
 * What the cache policy reports. observability/ implements it with prom-client, so the core never
 * imports a metrics library and two mirrors in one process never share a registry.
 */
/** `negative`: upstream's recent "not found", remembered for its notFoundTTL and answered without asking again. */
export type CacheOutcome = 'hit' | 'miss' | 'coalesced' | 'stale' | 'negative';

export interface MirrorObserver {
  cacheLookup(kind: 'blob' | 'manifest', outcome: CacheOutcome): void;
  /** Once per upstream blob download: the bytes the upstream sent, however many clients followed. */
  downloadFinished(result: 'committed' | 'failed', bytes: number): void;
  digestMismatch(kind: 'blob' | 'manifest'): void;
}

export const noopObserver: MirrorObserver = {
  cacheLookup() {},
  downloadFinished() {},
  digestMismatch() {},
};

/** One upstream blob download running now, as the status page's "in flight" table shows it. */
export interface InFlightDownload {
  readonly upstream: string;
  readonly repository: string;
  readonly digest: Digest;
  /** Bytes received so far (0 until upstream answered). */
  readonly bytes: number;
  /** undefined until upstream answered, or when it sent no length. */
  readonly size: number | undefined;
  /** ms since epoch. */
  readonly startedAt: number;
  /** Client responses reading it now (a sync run's download has none). */
  readonly followers: number;
}
