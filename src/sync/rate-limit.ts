import { setTimeout as sleep } from 'node:timers/promises';
import { retryable, type Retryable } from '../mirror/index.js';

/**
 * A value is trusted this long: Docker Hub's window refills over hours, and only responses refresh
 * what we know, so an old low reading must not block every later run.
 */
const READING_TTL_MS = 15 * 60_000;

/** The last `ratelimit-remaining` each upstream advertised (fed from the UpstreamObserver hook). */
export class RateLimitLedger {
  private readonly readings = new Map<string, { remaining: number; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  rateLimitRemaining(upstream: string, remaining: number): void {
    this.readings.set(upstream, { remaining, at: this.now() });
  }

  remaining(upstream: string): number | undefined {
    const r = this.readings.get(upstream);
    return r === undefined || this.now() - r.at > READING_TTL_MS ? undefined : r.remaining;
  }
}

/** The run stopped on purpose: going on would eat the pulls kept for clients. */
export class ReserveReachedError extends Error {
  override readonly name = 'ReserveReachedError';
  constructor(
    readonly upstream: string,
    readonly remaining: number,
    readonly reserve: number,
  ) {
    super(`stopped before exhausting ${upstream}'s rate limit: ratelimit-remaining ${remaining} <= reserve ${reserve}`);
  }
}

export interface RetryPolicy {
  readonly retries: number;
  readonly maxRetryAfterMs: number;
  /** First backoff when upstream gave no Retry-After; doubles per attempt. */
  readonly baseDelayMs: number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told about each pause, for the log. */
  readonly onRetry?: (info: { attempt: number; delayMs: number; error: Error; retry: Retryable; job?: string }) => void;
}

/**
 * Retries a rate-limited (429) or unavailable upstream call: Retry-After when upstream sent one
 * (RFC 9110 §10.2.3), else exponential backoff. Other failures (not found, denied) are final.
 */
export async function withRetry<T>(task: () => Promise<T>, policy: RetryPolicy, signal?: AbortSignal): Promise<T> {
  const pause = policy.sleep ?? ((ms, s) => sleep(ms, undefined, s === undefined ? {} : { signal: s }));
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (err) {
      const retry = retryable(err);
      if (retry === undefined || attempt > policy.retries) throw err;
      const delayMs = retry.retryAfterSeconds !== undefined ? retry.retryAfterSeconds * 1000 : policy.baseDelayMs * 2 ** (attempt - 1);
      if (delayMs > policy.maxRetryAfterMs) throw err;
      policy.onRetry?.({ attempt, delayMs, error: err as Error, retry });
      await pause(delayMs, signal);
    }
  }
}
