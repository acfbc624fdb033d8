import type { BlobFollower } from './blob-follower.js';

/** The followers of one in-progress write, and the writes waiting for the slowest of them. */
export class FollowerSet {
  readonly #all = new Set<BlobFollower>();
  #wakeScheduled = false;
  #waiters: Array<{ readonly until: number; readonly resolve: () => void; readonly reject: (error: Error) => void }> = [];

  get size(): number {
    return this.#all.size;
  }

  add(follower: BlobFollower): void {
    this.#all.add(follower);
  }

  /** False when it was not a member (released twice). */
  delete(follower: BlobFollower): boolean {
    return this.#all.delete(follower);
  }

  /** New bytes are readable. */
  wake(): void {
    for (const follower of this.#all) follower.wake();
  }

  /**
   * wake(), once per loop turn however many chunks arrived in it: a direct GET lands several reads
   * a turn, and each wake costs every follower a push and its client a socket write.
   */
  wakeSoon(): void {
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.wake();
    });
  }

  /** Fails every follower and every wait with `reason`. */
  destroy(reason: Error): void {
    for (const follower of [...this.#all]) follower.destroy(reason);
    for (const w of this.#waiters.splice(0)) w.reject(reason);
  }

  /** The least progress among the followers (Infinity without any). */
  slowest(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const follower of this.#all) min = Math.min(min, follower.progress);
    return min;
  }

  /** Resolves once every follower made progress up to `until`, or left. */
  reach(until: number): Promise<void> {
    if (this.slowest() >= until) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ until, resolve, reject }));
  }

  /** Resolves the waits that the followers' progress now allows; returns the slowest progress. */
  settle(): number {
    const slowest = this.slowest();
    if (this.#waiters.some((w) => w.until <= slowest)) {
      const ready = this.#waiters.filter((w) => w.until <= slowest);
      this.#waiters = this.#waiters.filter((w) => w.until > slowest);
      for (const w of ready) w.resolve();
    }
    return slowest;
  }
}
