/** At most `size` tasks at once, first come first served: the global bound on sync blob downloads. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Highest number ever running at once (reported by tests and the run result). */
  peak = 0;

  constructor(readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `active` never dips and lets a newcomer jump the queue.
      if (next !== undefined) next();
      else this.active--;
    }
  }
}
