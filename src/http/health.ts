import { Coalescer } from '../concurrency/index.js';
import { errorCode } from '../observability/index.js';

export interface ReadyResult {
  readonly ok: boolean;
  /** Why not ready, one short line per failed check (no paths to secrets, no stacks). */
  readonly reasons: readonly string[];
  /** Ready, but working in a reduced mode (e.g. storage full: serving without caching), one line each. */
  readonly degraded?: readonly string[];
}

/** What a check may resolve to when the dependency is impaired but the service still serves. */
export interface Degraded {
  readonly degraded: string;
}

export interface ReadinessCheck {
  readonly name: string;
  /** Resolves when the dependency works (or to Degraded); throws (or rejects) with the reason otherwise. */
  run(): Promise<void | Degraded>;
}

export interface ReadinessOptions {
  /** How long an answer is reused: kubelet and load balancers probe every few seconds, per replica. */
  readonly cacheMs?: number;
  /** A check that takes longer than this counts as failed (a hung NFS mount, an unreachable Redis). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/**
 * /readyz: the checks run at most once per `cacheMs`, and concurrent probes share one run, so the
 * endpoint stays cheap however often it is asked. After `shutdown()` it answers not ready, so load
 * balancers stop sending new pulls while in-flight transfers finish.
 */
export class Readiness {
  private readonly cacheMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private last: { at: number; result: ReadyResult } | undefined;
  /** One key: concurrent probes share one run of the checks. */
  private readonly running = new Coalescer<ReadyResult>();
  private stopping = false;

  constructor(
    private readonly checks: readonly ReadinessCheck[],
    options: ReadinessOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  shutdown(): void {
    this.stopping = true;
  }

  async check(): Promise<ReadyResult> {
    if (this.stopping) return { ok: false, reasons: ['shutting down'] };
    if (this.last !== undefined && this.now() - this.last.at < this.cacheMs) return this.last.result;
    return this.running.run('checks', () => this.runAll()).promise;
  }

  private async runAll(): Promise<ReadyResult> {
    const outcomes = await Promise.all(this.checks.map((c) => this.runOne(c)));
    const reasons = outcomes.filter((r): r is string => typeof r === 'string');
    const degraded = outcomes.filter((r): r is Degraded => typeof r === 'object').map((d) => d.degraded);
    const result = { ok: reasons.length === 0, reasons, ...(degraded.length > 0 ? { degraded } : {}) };
    this.last = { at: this.now(), result };
    return result;
  }

  private async runOne(check: ReadinessCheck): Promise<string | Degraded | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`${check.name}: no answer within ${this.timeoutMs} ms`), this.timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([check.run().then((r) => (r ? { degraded: `${check.name}: ${r.degraded}` } : undefined)), timeout]);
    } catch (err) {
      return `${check.name}: ${reason(err)}`;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An error code says enough and cannot carry a secret (a Redis URL in a message could). */
function reason(err: unknown): string {
  const code = errorCode(err);
  if (code !== undefined) return `failed (${code})`;
  return err instanceof Error ? err.message : String(err);
}
