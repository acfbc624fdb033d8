import { CronExpressionParser } from 'cron-parser';
import type { Logger } from 'pino';
import { sameValue, type Schedule, type SyncEntry } from '../config/index.js';

/** The scheduler's only view of time, so tests drive it with fake timers while the work stays real. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The first slot strictly after `after` (cron in UTC). `anchor` is the last planned start of an interval job. */
export function nextSlot(schedule: Schedule, after: number, anchor: number | undefined): number {
  if (schedule.kind === 'cron') return CronExpressionParser.parse(schedule.expression, { currentDate: new Date(after), tz: 'UTC' }).next().getTime();
  let next = (anchor ?? after) + schedule.ms;
  // A run that outlasted its interval skips the slots it missed instead of starting back to back.
  while (next <= after) next += schedule.ms;
  return next;
}

interface Slot {
  timer: unknown;
  anchor: number | undefined;
  /** When the timer fires; undefined once it has (the run is under way). */
  due: number | undefined;
}

/**
 * Runs each entry on its schedule, plus jitter. The next timer is armed only when a run ends, so an
 * entry never overlaps itself however long a run takes; `run` bounds the shared work.
 */
export class Scheduler {
  private readonly slots = new Map<string, Slot>();
  private closed = false;
  /** `sync.jitter`, which a reload may change. */
  private jitterMs: number;

  constructor(
    private entries: readonly SyncEntry[],
    private readonly run: (entry: SyncEntry) => Promise<unknown>,
    private readonly options: { readonly timers: Timers; readonly jitterMs: number; readonly random: () => number; readonly logger: Logger },
  ) {
    this.jitterMs = options.jitterMs;
  }

  start(): void {
    for (const entry of this.entries) {
      if (entry.runOnStart) this.arm(entry, 0);
      else if (entry.schedule !== undefined) this.plan(entry);
    }
  }

  stop(): void {
    this.closed = true;
    for (const slot of this.slots.values()) this.options.timers.clearTimeout(slot.timer);
    this.slots.clear();
  }

  /**
   * A config reload: a removed entry loses its timer, an added one is planned (run at once with
   * runOnStart), a changed one is planned afresh. A run in flight goes on with the entry it started
   * with; the next one is planned from the entry as configured by then.
   */
  update(entries: readonly SyncEntry[], jitterMs: number): void {
    this.jitterMs = jitterMs;
    const before = new Map(this.entries.map((e) => [e.name, e]));
    this.entries = entries;
    for (const [name, slot] of [...this.slots]) {
      const entry = entries.find((e) => e.name === name);
      const changed = entry === undefined || !sameValue(before.get(name), entry);
      // A slot without a due time is a run under way: fire() plans its successor when it ends.
      if (changed && slot.due !== undefined) {
        this.options.timers.clearTimeout(slot.timer);
        this.slots.delete(name);
        if (entry !== undefined) this.plan(entry);
      }
    }
    for (const entry of entries) {
      if (before.has(entry.name) || this.slots.has(entry.name)) continue;
      if (entry.runOnStart) this.arm(entry, 0);
      else this.plan(entry);
    }
  }

  /** When the entry runs next (ms since epoch), jitter included; undefined while it runs or when nothing is planned. */
  nextRun(name: string): number | undefined {
    return this.slots.get(name)?.due;
  }

  private plan(entry: SyncEntry): void {
    if (this.closed || entry.schedule === undefined) return;
    const { timers, random } = this.options;
    const jitterMs = this.jitterMs;
    const now = timers.now();
    const slot = nextSlot(entry.schedule, now, this.slots.get(entry.name)?.anchor);
    const delay = slot - now + Math.floor(random() * jitterMs);
    this.arm(entry, delay, slot);
  }

  private arm(entry: SyncEntry, delayMs: number, anchor?: number): void {
    const timer = this.options.timers.setTimeout(() => void this.fire(entry.name), Math.max(0, delayMs));
    const now = this.options.timers.now();
    this.slots.set(entry.name, { timer, anchor: anchor ?? now, due: now + Math.max(0, delayMs) });
  }

  private async fire(name: string): Promise<void> {
    // Looked up now, not when armed: a reload may have changed the entry since.
    const entry = this.entries.find((e) => e.name === name);
    if (this.closed || entry === undefined) return;
    const slot = this.slots.get(entry.name);
    if (slot !== undefined) slot.due = undefined;
    try {
      await this.run(entry);
    } catch (err) {
      // run() reports its own failures; anything here is a bug, and must not stop the schedule.
      this.options.logger.error({ job: entry.name, error: String(err) }, 'sync job crashed');
    }
    const current = this.entries.find((e) => e.name === name);
    if (current !== undefined) this.plan(current);
    else this.slots.delete(name);
  }
}
