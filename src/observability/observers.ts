import type { Source } from '../mirror/index.js';

/**
 * Event interfaces for the parts that are not the cache policy, the cache budget or an upstream (those
 * define their own: MirrorObserver, CacheIndexObserver, UpstreamObserver). Metrics implements every
 * one; callers only see these shapes, so nothing outside observability/ imports prom-client. Every
 * method is a synchronous increment.
 */

/** What the HTTP listener reports once per finished request. */
export interface HttpObserver {
  /** `route` is a bounded name (a route kind or an ops endpoint), never a path. */
  request(method: string, route: string, status: number, seconds: number): void;
  /** A manifest or blob answered to a client from `source`: the client-side hit ratio. */
  answered(kind: 'blob' | 'manifest', source: Source): void;
  /** Body bytes sent for one repository; `source` is known for blob bodies only. */
  served(upstream: string, repository: string, source: Source | undefined, bytes: number): void;
}

/** What the audit log reports: lines appended, and lines dropped because the queue was full or the log closed. */
export interface AuditObserver {
  auditLines(result: 'written' | 'dropped', lines: number): void;
}

export interface SyncRunReport {
  readonly job: string;
  readonly result: 'success' | 'failure';
  /** Bytes fetched from upstream by this run. */
  readonly bytes: number;
  /** Image manifests (per platform) made available by this run. */
  readonly images: number;
  /** ms since epoch; default now. */
  readonly finishedAt?: number;
  /** ms since epoch. */
  readonly startedAt?: number;
  /** How many images or steps failed in this run. */
  readonly errors?: number;
  /** Short reason for a failure (already free of secrets). */
  readonly error?: string;
  /** Who started the run. */
  readonly origin?: SyncRunOrigin;
}

/** The scheduler, `regmirror sync`, or `POST /api/sync/<entry>`. */
export type SyncRunOrigin = 'scheduled' | 'cli' | 'api';

/** What the sync jobs report: a run starting, and how it ended. */
export interface SyncObserver {
  syncStarted(job: string, origin?: SyncRunOrigin): void;
  syncFinished(report: SyncRunReport): void;
}
