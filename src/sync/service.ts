import type { Logger } from 'pino';
import type { Schedule, SyncConfig, SyncEntry } from '../config/index.js';
import type { SyncMirror } from '../mirror/index.js';
import { whileHeld, type Leases } from '../concurrency/index.js';
import { errorSummary, type SyncObserver, type SyncRunOrigin } from '../observability/index.js';
import { runJob, type JobDeps } from './job.js';
import { Limiter } from '../concurrency/index.js';
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
  /** Replicas sharing the metadata (Redis) run each entry on one of them at a time through these. */
  readonly leases?: Leases;
}

/** A replica that dies mid-run frees its entries after this; a live one renews every third of it. */
const SYNC_LEASE_MS = 30_000;
/** What a replica says of a run it left to the replica holding the entry's lease. */
export const RUNNING_ELSEWHERE = 'running on another replica';

export interface RunOptions {
  /** A glob over entry names or `<upstream>/<repository>`. */
  readonly only?: string | undefined;
  readonly dryRun?: boolean | undefined;
  readonly progress?: SyncProgress | undefined;
  /** Who asks (default `cli`); the status shows it for the last run. */
  readonly origin?: SyncRunOrigin | undefined;
}

/** A configured entry as `sync --list`, `/api/status` and the page show it. */
export interface EntryState {
  readonly job: string;
  readonly upstream: string;
  readonly repository: string;
  /** As configured: "6h", "0 3 * * *"; null without a schedule. */
  readonly schedule: string | null;
  /** ms since epoch (jitter included); undefined while running or with nothing planned. */
  readonly nextRunAt: number | undefined;
  readonly running: boolean;
  /** When this replica last left a run to another replica that held the entry ({@link RUNNING_ELSEWHERE}). */
  readonly lastSkippedAt: number | undefined;
}

/** What `POST /api/sync/<entry>` gets: started now, already running since, or no such entry. */
export type StartOutcome = { readonly outcome: 'started' | 'running'; readonly startedAt: number } | { readonly outcome: 'unknown' };

interface Running {
  readonly promise: Promise<EntryResult>;
  readonly startedAt: number;
  readonly origin: SyncRunOrigin;
  /** Everyone watching this run: whoever started it and whoever joined it since. */
  readonly watchers: Set<SyncProgress>;
}

/** The sync jobs of one App: the scheduler inside `serve`, and one-shot runs for `regmirror sync` and the API. */
export class SyncService {
  /** One bound on blob downloads for every job, scheduled or one-shot. */
  limiter: Limiter;
  /** Entry name → its run in flight. */
  private readonly running = new Map<string, Running>();
  /** Entry name → when a run was last skipped here because another replica held it. */
  private readonly skipped = new Map<string, number>();
  private readonly abort = new AbortController();
  private deps: JobDeps;
  private readonly timers: Timers;
  private scheduler: Scheduler | undefined;
  /** startSchedules() was called: a reload that adds the first scheduled entry arms it. */
  private scheduling = false;
  /** The `sync` section in force: the options' until a reload replaces it. */
  private config: SyncConfig;

  constructor(private readonly options: SyncServiceOptions) {
    this.config = options.config;
    this.timers = options.timers ?? realTimers;
    this.limiter = new Limiter(options.config.concurrency);
    this.deps = this.jobDeps(options.config);
  }

  /**
   * A config reload: later runs use the new entries and settings, the schedule follows them, and a
   * run in flight finishes with what it started with (its deps are its own).
   */
  reconfigure(config: SyncConfig): void {
    if (config.concurrency !== this.limiter.size) this.limiter = new Limiter(config.concurrency);
    this.config = config;
    this.deps = this.jobDeps(config);
    if (this.scheduler !== undefined) this.scheduler.update(config.entries, config.jitterMs);
    else if (this.scheduling) this.startSchedules();
  }

  private jobDeps(config: SyncConfig): JobDeps {
    const { mirror, logger, ledger } = this.options;
    const timers = this.timers;
    const retry: RetryPolicy = {
      retries: config.retries,
      maxRetryAfterMs: config.maxRetryAfterMs,
      baseDelayMs: 1000,
      sleep: this.options.retrySleep,
      onRetry: ({ attempt, delayMs, error, retry, job }) =>
        logger.warn({ job, upstream: retry.upstream, failure: retry.reason, attempt, delayMs, error: errorSummary(error) }, retry.reason === 'rate-limited' ? 'sync rate-limited by upstream; backing off' : 'sync: upstream unavailable; retrying'),
    };
    return { mirror, limiter: this.limiter, ledger, config, retry, logger, now: () => timers.now() };
  }

  get entries(): readonly SyncEntry[] {
    return this.config.entries;
  }

  /** Every matching entry at once (the limiter bounds the downloads); ok when all succeeded. */
  async run(options: RunOptions = {}): Promise<SyncRunResult> {
    const entries = selectEntries(this.entries, options.only);
    const results = await Promise.all(entries.map((e) => this.runEntry(e, options)));
    return { ok: results.every((r) => r.result === 'success'), entries: results };
  }

  /** A run of an entry already running joins it (and watches its progress from now on) instead of starting a second one. */
  runEntry(entry: SyncEntry, options: RunOptions = {}): Promise<EntryResult> {
    const dryRun = options.dryRun ?? false;
    if (dryRun) return runJob(entry, this.deps, { dryRun, progress: options.progress, signal: this.abort.signal });
    const live = this.running.get(entry.name);
    if (live !== undefined) {
      if (options.progress !== undefined) live.watchers.add(options.progress);
      const by = live.origin === 'scheduled' ? 'the schedule' : live.origin === 'api' ? 'the API' : 'regmirror sync';
      options.progress?.note?.(entry.name, 'info', `already running since ${new Date(live.startedAt).toISOString()} (started by ${by}); following that run`);
      return live.promise;
    }
    const origin = options.origin ?? 'cli';
    const watchers = new Set<SyncProgress>(options.progress === undefined ? [] : [options.progress]);
    const progress = fanOut(watchers);
    const startedAt = this.timers.now();
    const promise = (async () => {
      try {
        return await this.exclusively(entry, progress, () => this.runNow(entry, origin, progress));
      } finally {
        this.running.delete(entry.name);
      }
    })();
    this.running.set(entry.name, { promise, startedAt, origin, watchers });
    return promise;
  }

  /**
   * Runs the entry while holding its lease, so replicas sharing a Redis run it one at a time; when
   * another replica holds it, this run is skipped (said in the log, the progress and the status).
   * A lease store that cannot be asked does not stop the run: at worst two replicas do the work.
   */
  private async exclusively(entry: SyncEntry, progress: SyncProgress, run: () => Promise<EntryResult>): Promise<EntryResult> {
    const { leases, logger } = this.options;
    if (leases?.shared !== true) return run();
    let lease;
    try {
      lease = await leases.tryAcquire(`sync:${entry.name}`, SYNC_LEASE_MS);
    } catch (err) {
      logger.warn({ job: entry.name, error: errorSummary(err) }, 'sync lease unavailable; running the entry here');
      return run();
    }
    if (lease === undefined) {
      const at = this.timers.now();
      this.skipped.set(entry.name, at);
      logger.info({ job: entry.name }, `sync entry ${RUNNING_ELSEWHERE}; skipped here`);
      progress.note?.(entry.name, 'info', `${RUNNING_ELSEWHERE}; skipped here`);
      const when = new Date(at).toISOString();
      return { job: entry.name, upstream: entry.upstream, repository: entry.repository, dryRun: false, startedAt: when, finishedAt: when, result: 'success', images: [], bytesDownloaded: 0, errors: [], warnings: [RUNNING_ELSEWHERE], pruned: [], stoppedByRateLimit: null };
    }
    const onLost = (err: unknown) => logger.warn({ job: entry.name, error: errorSummary(err) }, 'sync lease lost mid-run; another replica may run the entry too');
    return whileHeld(lease, SYNC_LEASE_MS, run, onLost);
  }

  private async runNow(entry: SyncEntry, origin: SyncRunOrigin, progress: SyncProgress): Promise<EntryResult> {
    const { observer } = this.options;
    observer.syncStarted(entry.name, origin);
    const r = await runJob(entry, this.deps, { dryRun: false, progress, signal: this.abort.signal });
    const images = r.images.filter((i) => i.status === 'synced').reduce((n, i) => n + i.manifests, 0);
    observer.syncFinished({
      job: r.job,
      result: r.result,
      bytes: r.bytesDownloaded,
      images,
      startedAt: Date.parse(r.startedAt),
      finishedAt: Date.parse(r.finishedAt),
      errors: r.errors.length,
      origin,
      ...(r.errors[0] !== undefined ? { error: r.errors[0] } : {}),
    });
    return r;
  }

  /** Starts an entry by name without waiting for it (`POST /api/sync/<entry>`); a running one is left alone. */
  start(name: string, origin: SyncRunOrigin): StartOutcome {
    const entry = this.entries.find((e) => e.name === name);
    if (entry === undefined) return { outcome: 'unknown' };
    const live = this.running.get(name);
    if (live !== undefined) return { outcome: 'running', startedAt: live.startedAt };
    // runJob never throws; a crash here is a bug, logged like the scheduler's.
    this.runEntry(entry, { origin }).catch((err: unknown) => this.options.logger.error({ job: name, error: String(err) }, 'sync job crashed'));
    return { outcome: 'started', startedAt: this.running.get(name)?.startedAt ?? this.timers.now() };
  }

  /** Every configured entry: its schedule, next planned run, and whether it runs now. */
  states(): EntryState[] {
    return this.entries.map((e) => ({
      job: e.name,
      upstream: e.upstream,
      repository: e.repository,
      schedule: describeSchedule(e.schedule),
      nextRunAt: this.running.has(e.name) ? undefined : this.scheduler?.nextRun(e.name),
      running: this.running.has(e.name),
      lastSkippedAt: this.skipped.get(e.name),
    }));
  }

  /** Arms every scheduled (and runOnStart) entry; called by App.start(). */
  startSchedules(): void {
    this.scheduling = true;
    if (this.scheduler !== undefined || this.entries.length === 0) return;
    this.scheduler = new Scheduler(this.entries, (e) => this.runEntry(e, { origin: 'scheduled' }), {
      timers: this.timers,
      jitterMs: this.config.jitterMs,
      random: this.options.random ?? Math.random,
      logger: this.options.logger,
    });
    this.scheduler.start();
  }

  /** Stops the timers, cancels running jobs between steps, and waits for them. Safe twice. */
  async close(): Promise<void> {
    this.scheduler?.stop();
    this.abort.abort(new Error('regmirror is shutting down'));
    await Promise.allSettled([...this.running.values()].map((r) => r.promise));
  }
}

/** A schedule as the config spells it: the cron expression, or the interval in its largest whole unit. */
export function describeSchedule(schedule: Schedule | undefined): string | null {
  if (schedule === undefined) return null;
  if (schedule.kind === 'cron') return schedule.expression;
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  const [unit, size] = units.find(([, size]) => schedule.ms % size === 0) ?? ['ms', 1];
  return `${schedule.ms / size}${unit}`;
}

/** One progress listener that tells every watcher; a watcher added later hears from then on. */
function fanOut(watchers: ReadonlySet<SyncProgress>): SyncProgress {
  return {
    imageStarted: (job, image, blobs, bytes) => watchers.forEach((w) => w.imageStarted(job, image, blobs, bytes)),
    blobDone: (job, image, bytes) => watchers.forEach((w) => w.blobDone(job, image, bytes)),
    imageFinished: (job, image, ok) => watchers.forEach((w) => w.imageFinished(job, image, ok)),
    note: (job, level, message) => watchers.forEach((w) => w.note?.(job, level, message)),
  };
}
