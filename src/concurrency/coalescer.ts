/**
 * One in-flight promise per key: concurrent callers for the same key share the first caller's work
 * (one upstream request for N concurrent cold pulls, one token fetch per scope, one run of a sync
 * entry). The entry is dropped when the work settles, fulfilled or rejected, so a later call starts
 * afresh and a failure is shared only by those who were already waiting.
 */
export class Coalescer<V, K = string> {
  private readonly inflight = new Map<K, Promise<V>>();

  run(key: K, work: () => Promise<V>): { promise: Promise<V>; joined: boolean } {
    const existing = this.inflight.get(key);
    if (existing !== undefined) return { promise: existing, joined: true };
    const promise = work().finally(() => {
      if (this.inflight.get(key) === promise) this.inflight.delete(key);
    });
    this.inflight.set(key, promise);
    return { promise, joined: false };
  }

  /** The work in flight for `key`, without starting any. */
  peek(key: K): Promise<V> | undefined {
    return this.inflight.get(key);
  }

  /** Every promise in flight now (to wait for them at shutdown). */
  pending(): Promise<V>[] {
    return [...this.inflight.values()];
  }

  get size(): number {
    return this.inflight.size;
  }
}
