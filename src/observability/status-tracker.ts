import type { SyncRunOrigin, SyncRunReport } from './observers.js';

/** Repositories remembered for the status page; later ones are summed under OTHER_REPOSITORIES. */
export const TRACKED_REPOSITORIES = 1000;
export const OTHER_REPOSITORIES = '(other)';

export type UpstreamState = 'unknown' | 'ok' | 'degraded' | 'down' | 'auth-failed';

/** The mirror's credentials for an upstream were refused or withheld, until a credentialed request succeeds. */
export interface AuthFailure {
  readonly at: number;
  readonly reason: 'rejected' | 'withheld';
  /** One line for the operator: what refused them, or where they were kept from (no secret). */
  readonly message: string;
}

export interface UpstreamSeen {
  state: UpstreamState;
  lastStatus: number | 'error' | undefined;
  lastRequestAt: number | undefined;
  lastError: { at: number; cause: string } | undefined;
  authFailure: AuthFailure | undefined;
}

export interface RepositoryBytes {
  readonly upstream: string;
  readonly repository: string;
  bytes: number;
}

export interface SyncJobState {
  running: boolean;
  lastResult: 'success' | 'failure' | undefined;
  lastRunAt: number | undefined;
  lastSuccessAt: number | undefined;
  lastError: string | undefined;
  /** Who started the run in flight (while running), and the last finished one. */
  runningOrigin: SyncRunOrigin | undefined;
  runningSince: number | undefined;
  lastOrigin: SyncRunOrigin | undefined;
  /** The last finished run on its own (the counters sum every run). */
  lastRun: { startedAt: number | undefined; finishedAt: number; images: number; bytes: number; errors: number } | undefined;
}

/**
 * The few facts the status page needs that a counter cannot answer ("what happened last", "which
 * repositories"), kept in bounded maps so a mirror serving millions of names stays small.
 */
export class StatusTracker {
  readonly upstreams = new Map<string, UpstreamSeen>();
  readonly repositories = new Map<string, RepositoryBytes>();
  readonly syncJobs = new Map<string, SyncJobState>();

  constructor(private readonly now: () => number = Date.now) {}

  upstreamAnswered(upstream: string, status: number | 'error'): void {
    const seen = this.upstream(upstream);
    seen.lastStatus = status;
    seen.lastRequestAt = this.now();
    // 4xx other than 429 is an answer (not found, auth): the registry is up. 429 and 5xx mean pulls
    // fail or get served stale; no answer at all means down.
    seen.state = status === 'error' ? 'down' : status === 429 || status >= 500 ? 'degraded' : 'ok';
  }

  upstreamFailed(upstream: string, cause: string): void {
    this.upstream(upstream).lastError = { at: this.now(), cause };
  }

  authFailed(upstream: string, failure: Omit<AuthFailure, 'at'>): void {
    this.upstream(upstream).authFailure = { at: this.now(), ...failure };
  }

  /** True when this ended an auth failure. */
  authSucceeded(upstream: string): boolean {
    const seen = this.upstreams.get(upstream);
    if (seen?.authFailure === undefined) return false;
    seen.authFailure = undefined;
    return true;
  }

  private upstream(name: string): UpstreamSeen {
    let seen = this.upstreams.get(name);
    if (seen === undefined) {
      seen = { state: 'unknown', lastStatus: undefined, lastRequestAt: undefined, lastError: undefined, authFailure: undefined };
      this.upstreams.set(name, seen);
    }
    return seen;
  }

  served(upstream: string, repository: string, bytes: number): void {
    const key = `${upstream}\u0000${repository}`;
    let entry = this.repositories.get(key);
    if (entry === undefined) {
      const full = this.repositories.size >= TRACKED_REPOSITORIES;
      const otherKey = `${upstream}\u0000${OTHER_REPOSITORIES}`;
      entry = full ? this.repositories.get(otherKey) : undefined;
      if (entry === undefined) {
        entry = { upstream, repository: full ? OTHER_REPOSITORIES : repository, bytes: 0 };
        // The (other) bucket may push the map one entry per upstream past the cap; that is bounded too.
        this.repositories.set(full ? otherKey : key, entry);
      }
    }
    entry.bytes += bytes;
  }

  topRepositories(limit: number): RepositoryBytes[] {
    return [...this.repositories.values()]
      .filter((r) => r.bytes > 0)
      .sort((a, b) => b.bytes - a.bytes || a.repository.localeCompare(b.repository))
      .slice(0, limit)
      .map((r) => ({ ...r }));
  }

  syncStarted(job: string, origin?: SyncRunOrigin): void {
    const state = this.job(job);
    state.running = true;
    state.runningOrigin = origin;
    state.runningSince = this.now();
  }

  syncFinished(report: SyncRunReport): void {
    const state = this.job(report.job);
    const at = report.finishedAt ?? this.now();
    state.running = false;
    state.runningOrigin = undefined;
    state.runningSince = undefined;
    state.lastOrigin = report.origin;
    state.lastResult = report.result;
    state.lastRunAt = at;
    state.lastError = report.result === 'failure' ? report.error : undefined;
    if (report.result === 'success') state.lastSuccessAt = at;
    state.lastRun = { startedAt: report.startedAt, finishedAt: at, images: report.images, bytes: report.bytes, errors: report.errors ?? (report.result === 'failure' ? 1 : 0) };
  }

  private job(name: string): SyncJobState {
    let state = this.syncJobs.get(name);
    if (state === undefined) {
      state = { running: false, lastResult: undefined, lastRunAt: undefined, lastSuccessAt: undefined, lastError: undefined, runningOrigin: undefined, runningSince: undefined, lastOrigin: undefined, lastRun: undefined };
      this.syncJobs.set(name, state);
    }
    return state;
  }
}
