/**
 * One in-flight promise per key: concurrent callers for the same key share the first caller's work
 * (one upstream request for N concurrent cold pulls). The entry is dropped when the work settles.
 */
export class Coalescer<V> {
  private readonly inflight = new Map<string, Promise<V>>();

  run(key: string, work: () => Promise<V>): { promise: Promise<V>; joined: boolean } {
    const existing = this.inflight.get(key);
    if (existing !== undefined) return { promise: existing, joined: true };
    const promise = work().finally(() => {
      if (this.inflight.get(key) === promise) this.inflight.delete(key);
    });
    this.inflight.set(key, promise);
    return { promise, joined: false };
  }

  get size(): number {
    return this.inflight.size;
  }
}
