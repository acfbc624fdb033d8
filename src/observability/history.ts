/** What each minute of the status page's charts adds up. */
export const HISTORY_FIELDS = ['lookups', 'hits', 'bytesServed', 'bytesDownloaded', 'upstreamErrors', 'serverErrors'] as const;
export type HistoryField = (typeof HISTORY_FIELDS)[number];

/** Columns of per-step sums, oldest first; the last column entry is the step running now. */
export interface HistorySnapshot {
  readonly stepSeconds: number;
  /** Start of the first step (ISO). */
  readonly from: string;
  readonly series: Readonly<Record<HistoryField, readonly number[]>>;
}

/** One sample a minute for six hours: charts over "the last hours" without Prometheus. */
export const HISTORY_STEP_MS = 60_000;
export const HISTORY_STEPS = 360;

/**
 * A ring of per-minute sums, filled as events happen (no timer): a step nothing happened in stays
 * zero. Memory is fixed (fields × steps numbers), whatever the traffic.
 */
export class TrafficHistory {
  private readonly ring: Record<HistoryField, Float64Array>;
  /** The step index (ms / stepMs) the newest slot holds. */
  private newest: number;
  private readonly first: number;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly stepMs = HISTORY_STEP_MS,
    private readonly steps = HISTORY_STEPS,
  ) {
    this.ring = Object.fromEntries(HISTORY_FIELDS.map((f) => [f, new Float64Array(steps)])) as Record<HistoryField, Float64Array>;
    this.first = this.newest = Math.floor(now() / stepMs);
  }

  add(field: HistoryField, n = 1): void {
    const column = this.ring[field];
    const slot = this.advance() % this.steps;
    column[slot] = column[slot]! + n;
  }

  /** The steps since start, at most the ring's length, ending with the current one. */
  snapshot(): HistorySnapshot {
    const current = this.advance();
    const from = Math.max(this.first, current - this.steps + 1);
    const series = Object.fromEntries(
      HISTORY_FIELDS.map((f) => {
        const column: number[] = [];
        for (let i = from; i <= current; i++) column.push(this.ring[f][i % this.steps]!);
        return [f, column];
      }),
    ) as Record<HistoryField, number[]>;
    return { stepSeconds: this.stepMs / 1000, from: new Date(from * this.stepMs).toISOString(), series };
  }

  /** Moves to the current step, zeroing the slots of the steps that passed without events. */
  private advance(): number {
    const current = Math.floor(this.now() / this.stepMs);
    // A clock stepping back lands in the newest slot rather than rewriting the past.
    if (current <= this.newest) return this.newest;
    const passed = Math.min(current - this.newest, this.steps);
    for (let i = 1; i <= passed; i++) for (const f of HISTORY_FIELDS) this.ring[f][(this.newest + i) % this.steps] = 0;
    this.newest = current;
    return current;
  }
}
