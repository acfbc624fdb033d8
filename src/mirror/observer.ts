/**
 * What the cache policy reports. observability/ implements it with prom-client, so the core never
 * imports a metrics library and two mirrors in one process never share a registry.
 */
export type CacheOutcome = 'hit' | 'miss' | 'coalesced' | 'stale';

export interface MirrorObserver {
  cacheLookup(kind: 'blob' | 'manifest', outcome: CacheOutcome): void;
  downloadFinished(result: 'committed' | 'failed', bytes: number): void;
  digestMismatch(kind: 'blob' | 'manifest'): void;
}

export const noopObserver: MirrorObserver = {
  cacheLookup() {},
  downloadFinished() {},
  digestMismatch() {},
};
