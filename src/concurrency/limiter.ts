/** At most `size` tasks at once, first come first served: sync's blob downloads, an upstream's direct blob GETs per origin. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Highest number ever running at once (reported by tests and the run result). */
  peak = 0;

  constructor(readonly size: number) {}

  /** Tasks running or waiting: 0 when the limiter holds nothing and may be dropped. */
  get pending(): number {
    return this.active + this.waiting.length;
  }

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
