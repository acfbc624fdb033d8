/** How long one cause stays quiet after it was logged: a dead upstream under load must not flood the log. */
export const LOG_WINDOW_MS = 60_000;
/** Keys remembered at most; older ones are dropped first (a key seen again after that just logs again). */
const MAX_KEYS = 1000;

/**
 * Lets one log line per key through per window, and says how many were held back since, so the next
 * line that does get through can tell the operator the failure kept happening.
 */
export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly windowMs: number = LOG_WINDOW_MS,
  ) {}

  /** undefined: stay quiet; a number: log now, mentioning that many held back since the last line. */
  admit(key: string): number | undefined {
    const now = this.now();
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < this.windowMs) {
      seen.suppressed++;
      return undefined;
    }
    this.last.delete(key);
    if (this.last.size >= MAX_KEYS) this.last.delete(this.last.keys().next().value as string);
    this.last.set(key, { at: now, suppressed: 0 });
    return seen?.suppressed ?? 0;
  }
}
