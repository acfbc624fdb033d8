import type { Logger } from 'pino';
import { Coalescer } from '../concurrency/index.js';
import type { SyncConfig, SyncEntry } from '../config/index.js';
import type { SyncMirror } from '../mirror/index.js';
import { errorSummary, type SyncObserver } from '../observability/index.js';
import { runJob, type JobDeps } from './job.js';
import { Limiter } from './limiter.js';
import { selectEntries } from './entry-patterns.js';
import type { RateLimitLedger, RetryPolicy } from './rate-limit.js';
import { realTimers, Scheduler, type Timers } from './scheduler.js';
import type { EntryResult, SyncProgress, SyncRunResult } from './types.js';

export interface SyncServiceOptions {
  readonly config: SyncConfig;
  readonly mirror: SyncMirror;
  readonly observer: SyncObserver;
  readonly logger: Logger;
  readonly ledger: RateLimitLedger;
  readonly timers?: Timers;
  readonly random?: () => number;
  /** Backoff pauses (tests shorten them); default: real timers. */
  readonly retrySleep?: RetryPolicy['sleep'];
}

export interface RunOptions {
  /** A glob over entry names or `<upstream>/<repository>`. */
  readonly only?: string | undefined;
  readonly dryRun?: boolean | undefined;
  readonly progress?: SyncProgress | undefined;
}

/** The sync jobs of one App: the scheduler inside `serve`, and one-shot runs for `regmirror sync`. */
export class SyncService {
  /** One bound on blob downloads for every job, scheduled or one-shot. */
  readonly limiter: Limiter;
  /** Entry name → its run in flight. */
  private readonly running = new Coalescer<EntryResult>();
  private readonly abort = new AbortController();
  private readonly deps: JobDeps;
  private scheduler: Scheduler | undefined;

  constructor(private readonly options: SyncServiceOptions) {
    const { config, mirror, logger, ledger } = options;
    this.limiter = new Limiter(config.concurrency);
    const timers = options.timers ?? realTimers;
    const retry: RetryPolicy = {
      retries: config.retries,
      maxRetryAfterMs: config.maxRetryAfterMs,
      baseDelayMs: 1000,
      sleep: options.retrySleep,
      onRetry: ({ attempt, delayMs, error, retry, job }) =>
        logger.warn({ job, upstream: retry.upstream, failure: retry.reason, attempt, delayMs, error: errorSummary(error) }, retry.reason === 'rate-limited' ? 'sync rate-limited by upstream; backing off' : 'sync: upstream unavailable; retrying'),
    };
    this.deps = { mirror, limiter: this.limiter, ledger, config, retry, logger, now: () => timers.now() };
  }

  get entries(): readonly SyncEntry[] {
    return this.options.config.entries;
  }

  /** Every matching entry at once (the limiter bounds the downloads); ok when all succeeded. */
  async run(options: RunOptions = {}): Promise<SyncRunResult> {
    const entries = selectEntries(this.entries, options.only);
    const results = await Promise.all(entries.map((e) => this.runEntry(e, options)));
    return { ok: results.every((r) => r.result === 'success'), entries: results };
  }

  /** A run of an entry already running joins it instead of starting a second one. */
  runEntry(entry: SyncEntry, options: RunOptions = {}): Promise<EntryResult> {
    const dryRun = options.dryRun ?? false;
    if (dryRun) return runJob(entry, this.deps, { dryRun, progress: options.progress, signal: this.abort.signal });
    const { observer } = this.options;
    return this.running.run(entry.name, async () => {
      observer.syncStarted(entry.name);
      const r = await runJob(entry, this.deps, { dryRun, progress: options.progress, signal: this.abort.signal });
      const images = r.images.filter((i) => i.status === 'synced').reduce((n, i) => n + i.manifests, 0);
      observer.syncFinished({
        job: r.job,
        result: r.result,
        bytes: r.bytesDownloaded,
        images,
        startedAt: Date.parse(r.startedAt),
        finishedAt: Date.parse(r.finishedAt),
        errors: r.errors.length,
        ...(r.errors[0] !== undefined ? { error: r.errors[0] } : {}),
      });
      return r;
    }).promise;
  }

  /** Arms every scheduled (and runOnStart) entry; called by App.start(). */
  startSchedules(): void {
    if (this.scheduler !== undefined || this.entries.length === 0) return;
    this.scheduler = new Scheduler(this.entries, (e) => this.runEntry(e), {
      timers: this.options.timers ?? realTimers,
      jitterMs: this.options.config.jitterMs,
      random: this.options.random ?? Math.random,
      logger: this.options.logger,
    });
    this.scheduler.start();
  }

  /** Stops the timers, cancels running jobs between steps, and waits for them. Safe twice. */
  async close(): Promise<void> {
    this.scheduler?.stop();
    this.abort.abort(new Error('regmirror is shutting down'));
    await Promise.allSettled(this.running.pending());
  }
}
