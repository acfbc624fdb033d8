import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheOutcome, InFlightDownload, MirrorObserver, Source } from '../mirror/index.js';
import type { EndpointReport, UpstreamObserver } from '../upstream/index.js';
import type { CacheIndexObserver } from '../cache/index.js';
import type { PolicyObserver, PolicyOutcome } from '../policy/index.js';
import type { AuditObserver, HttpObserver, SyncObserver, SyncRunOrigin, SyncRunReport } from './observers.js';
import { StatusTracker } from './status-tracker.js';
import { TrafficHistory } from './history.js';
import { EndpointStates } from './endpoint-status.js';
import { ClusterMetrics } from './cluster-metrics.js';

/** regmirror_served_bytes_total's `source` values, which the status page reports as they are. */
export type ServedLabel = 'cache' | 'upstream';

/**
 * regmirror_served_bytes_total keeps two label values, which dashboards read as "bytes no upstream
 * had to send" and "bytes fetched for a client": a stale copy is stored bytes, and a download another
 * request started is still upstream traffic.
 */
const SERVED_LABEL: Readonly<Record<Source, ServedLabel>> = { cache: 'cache', stale: 'cache', upstream: 'upstream', inflight: 'upstream', negative: 'cache' };

/** A client's answer in cache-lookup terms: joining another pull's download is "coalesced". */
const CLIENT_OUTCOME: Readonly<Record<Source, CacheOutcome>> = { cache: 'hit', stale: 'stale', upstream: 'miss', inflight: 'coalesced', negative: 'negative' };

/** An upstream answer that failed the pull: no answer, 429 or 5xx. */
export function isUpstreamError(status: string | number | undefined): boolean {
  if (status === 'error') return true;
  const n = Number(status);
  return n === 429 || n >= 500;
}

export interface MetricsOptions {
  /** Repositories with their own label on regmirror_repository_*; 0 (default) leaves those metrics out. */
  readonly perRepository?: number;
  /** The disk budget, exported so "fill vs budget" needs no config on the Prometheus side. */
  readonly cacheMaxBytes?: number;
  /** Node process metrics (process_*, nodejs_*); on by default. */
  readonly defaultMetrics?: boolean;
  readonly now?: () => number;
  /** An audit log is configured: its line counters exist (at zero) from the start. */
  readonly audit?: boolean;
}

/** The label value that stands for every repository past the perRepository cap. */
export const OTHER_REPOSITORY_LABEL = '_other';

const KINDS = ['blob', 'manifest'] as const;
const OUTCOMES = ['hit', 'miss', 'coalesced', 'stale', 'negative'] as const satisfies readonly CacheOutcome[];
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

// Registry answers take milliseconds; blob transfers take minutes. One set of buckets spans both.
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
// Upstream time is measured to response headers (the body is streamed by the mirror afterwards).
const UPSTREAM_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every regmirror metric, on a registry of its own (never prom-client's global one, so two mirrors
 * in one process keep separate numbers). Implements each observer interface with synchronous
 * increments; label children that repeat are bound once and reused.
 */
const POLICY_OUTCOMES: readonly PolicyOutcome[] = ['allowed', 'refused', 'warned', 'exempt'];

export class Metrics implements MirrorObserver, UpstreamObserver, HttpObserver, CacheIndexObserver, SyncObserver, AuditObserver, PolicyObserver {
  readonly registry = new Registry();
  readonly tracker: StatusTracker;
  readonly endpoints: EndpointStates;
  readonly history: TrafficHistory;
  readonly startedAt: number;
  readonly cacheMaxBytes: number | undefined;
  private readonly perRepository: number;
  private readonly labelledRepositories = new Set<string>();
  #downloadsNow: () => readonly InFlightDownload[] = () => [];
  private readonly now: () => number;

  readonly httpRequests = this.counter('regmirror_http_requests_total', 'HTTP requests answered, by method, route and status.', ['method', 'route', 'status']);
  readonly httpDuration = new Histogram({
    name: 'regmirror_http_request_duration_seconds',
    help: 'Time from request to the last body byte, by method and route.',
    labelNames: ['method', 'route'],
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });
  readonly cacheLookups = this.counter('regmirror_cache_lookups_total', 'Cache lookups by kind (blob|manifest) and outcome (hit|miss|coalesced|stale|negative: a remembered upstream 404), sync and exports included.', ['kind', 'outcome']);
  readonly clientLookups = this.counter('regmirror_client_lookups_total', 'Manifest and blob answers to clients by kind and outcome (hit|miss|coalesced|stale|negative): the hit ratio people see.', ['kind', 'outcome']);
  readonly servedBytes = this.counter('regmirror_served_bytes_total', 'Blob body bytes sent to clients, by source (cache|upstream).', ['source']);
  readonly upstreamRequests = this.counter('regmirror_upstream_requests_total', 'Requests to upstream registries (every hop), by upstream, method and status ("error": no answer).', [
    'upstream',
    'method',
    'status',
  ]);
  readonly upstreamDuration = new Histogram({
    name: 'regmirror_upstream_request_duration_seconds',
    help: 'Time to upstream response headers, by upstream and method.',
    labelNames: ['upstream', 'method'],
    buckets: UPSTREAM_BUCKETS,
    registers: [this.registry],
  });
  readonly authFailures = this.counter('regmirror_upstream_auth_failures_total', "Upstream calls failed on the mirror's own credentials, by upstream and reason (rejected|withheld: kept from a token realm outside the upstream's domain).", ['upstream', 'reason']);
  readonly rateLimit = this.gauge('regmirror_upstream_ratelimit_remaining', 'Pulls left in the upstream rate-limit window, as advertised by its ratelimit-remaining header.', ['upstream']);
  readonly downloadsInFlight: Gauge<string> = new Gauge({
    name: 'regmirror_blob_downloads_in_flight',
    help: 'Upstream blob downloads running now.',
    registers: [this.registry],
    // Read at scrape time from the downloads themselves, not kept by increments that could drift.
    collect: (): void => this.downloadsInFlight.set(this.#downloadsNow().length),
  });
  readonly downloads = this.counter('regmirror_blob_downloads_total', 'Upstream blob downloads finished, by result (committed|failed).', ['result']);
  readonly downloadedBytes = this.counter('regmirror_blob_downloaded_bytes_total', 'Blob bytes received from upstreams (once per download, however many clients followed it), by result.', ['result']);
  readonly policyDecisions = this.counter('regmirror_policy_decisions_total', 'Manifest requests under a policy rule, by outcome (allowed, refused, warned: would be refused in mode warn, exempt: a signature or attestation).', ['outcome']);
  readonly configReloads = this.counter('regmirror_config_reloads_total', 'Config reloads (SIGHUP or POST /api/reload), by result (applied: in force, keys that need a restart aside; refused: the running config stays).', ['result']);
  readonly digestMismatches = this.counter('regmirror_digest_mismatches_total', 'Upstream content whose sha256 did not match its digest, by kind.', ['kind']);
  readonly cacheBytes = this.gauge('regmirror_cache_size_bytes', 'Bytes of committed blobs in the cache.', []);
  readonly cacheBlobs = this.gauge('regmirror_cache_blobs', 'Committed blobs in the cache.', []);
  readonly cacheMax = this.gauge('regmirror_cache_max_size_bytes', 'The configured cache budget (storage.maxSize).', []);
  readonly evictions = this.counter('regmirror_cache_evictions_total', 'Blobs evicted to stay under the budget.', []);
  readonly evictedBytes = this.counter('regmirror_cache_evicted_bytes_total', 'Bytes evicted to stay under the budget.', []);
  readonly storageDegraded = this.gauge('regmirror_storage_degraded', '1 while storage is full or unwritable (serving without caching), else 0.', []);
  readonly syncRuns = this.counter('regmirror_sync_runs_total', 'Sync job runs, by job and result (success|failure).', ['job', 'result']);
  readonly syncLastSuccess = this.gauge('regmirror_sync_last_success_timestamp_seconds', 'When each sync job last succeeded (Unix time).', ['job']);
  readonly syncBytes = this.counter('regmirror_sync_bytes_total', 'Bytes fetched from upstream by sync runs, by job.', ['job']);
  readonly syncImages = this.counter('regmirror_sync_images_total', 'Images made available by sync runs, by job.', ['job']);
  readonly auditLinesTotal = this.counter('regmirror_audit_lines_total', 'Audit log lines, by result (written|dropped: the queue was full or the log closed).', ['result']);
  readonly repositoryBytes: Counter<string> | undefined;
  /** Peer traffic between replicas (`cluster`). */
  readonly cluster = new ClusterMetrics(this.registry);

  private readonly lookupChildren: Readonly<Record<(typeof KINDS)[number], Readonly<Record<CacheOutcome, Counter.Internal>>>>;
  private readonly servedChildren: Readonly<Record<ServedLabel, Counter.Internal>>;
  private readonly httpChildren = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<string> }>();

  constructor(options: MetricsOptions = {}) {
    const now = (this.now = options.now ?? Date.now);
    this.startedAt = now();
    this.tracker = new StatusTracker(now);
    this.endpoints = new EndpointStates(this.registry, now);
    this.history = new TrafficHistory(now);
    this.perRepository = options.perRepository ?? 0;
    this.cacheMaxBytes = options.cacheMaxBytes;
    if (options.cacheMaxBytes !== undefined) this.cacheMax.set(options.cacheMaxBytes);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.repositoryBytes =
      this.perRepository > 0
        ? this.counter('regmirror_repository_served_bytes_total', `Body bytes sent per repository (the first ${this.perRepository}; later ones as "${OTHER_REPOSITORY_LABEL}").`, ['upstream', 'repository'])
        : undefined;
    // Zero-valued series from the start: rate() and hit ratios need both sides to exist.
    const lookup = (kind: (typeof KINDS)[number]) =>
      Object.fromEntries(OUTCOMES.map((o) => [o, this.cacheLookups.labels(kind, o)])) as Record<CacheOutcome, Counter.Internal>;
    this.lookupChildren = { blob: lookup('blob'), manifest: lookup('manifest') };
    for (const kind of KINDS) for (const o of OUTCOMES) this.clientLookups.labels(kind, o).inc(0);
    this.servedChildren = { cache: this.servedBytes.labels('cache'), upstream: this.servedBytes.labels('upstream') };
    for (const c of [this.servedChildren.cache, this.servedChildren.upstream]) c.inc(0);
    for (const kind of KINDS) for (const o of OUTCOMES) this.lookupChildren[kind][o].inc(0);
    for (const r of ['committed', 'failed']) {
      this.downloads.labels(r).inc(0);
      this.downloadedBytes.labels(r).inc(0);
    }
    for (const kind of KINDS) this.digestMismatches.labels(kind).inc(0);
    for (const o of POLICY_OUTCOMES) this.policyDecisions.labels(o).inc(0);
    for (const r of ['applied', 'refused']) this.configReloads.labels(r).inc(0);
    this.evictions.inc(0);
    this.evictedBytes.inc(0);
    this.storageDegraded.set(0);
    if (options.audit === true) for (const r of ['written', 'dropped']) this.auditLinesTotal.labels(r).inc(0);
  }

  /** Where the in-flight gauge and table read the downloads (the mirror's own map of them). */
  watchDownloads(read: () => readonly InFlightDownload[]): void {
    this.#downloadsNow = read;
  }

  downloadsNow(): readonly InFlightDownload[] {
    return this.#downloadsNow();
  }

  // MirrorObserver

  cacheLookup(kind: 'blob' | 'manifest', outcome: CacheOutcome): void {
    this.lookupChildren[kind][outcome].inc();
  }

  downloadFinished(result: 'committed' | 'failed', bytes: number): void {
    this.downloads.labels(result).inc();
    if (bytes <= 0) return;
    this.downloadedBytes.labels(result).inc(bytes);
    this.history.add('bytesDownloaded', bytes);
  }

  configReloaded(result: 'applied' | 'refused'): void {
    this.configReloads.labels(result).inc();
  }

  policyDecision(outcome: PolicyOutcome): void {
    this.policyDecisions.labels(outcome).inc();
  }

  digestMismatch(kind: 'blob' | 'manifest'): void {
    this.digestMismatches.labels(kind).inc();
  }

  // UpstreamObserver

  upstreamRequest(event: { upstream: string; method: string; status: number | 'error'; seconds: number }): void {
    this.upstreamRequests.labels(event.upstream, event.method, String(event.status)).inc();
    this.upstreamDuration.labels(event.upstream, event.method).observe(event.seconds);
    this.tracker.upstreamAnswered(event.upstream, event.status);
    if (isUpstreamError(event.status)) this.history.add('upstreamErrors');
  }

  rateLimitRemaining(upstream: string, remaining: number): void {
    this.rateLimit.labels(upstream).set(remaining);
  }

  upstreamFailed(upstream: string, cause: string): void {
    this.tracker.upstreamFailed(upstream, cause);
  }

  authFailed(upstream: string, reason: 'rejected' | 'withheld', detail: string): void {
    this.authFailures.labels(upstream, reason).inc();
    this.tracker.authFailed(upstream, { reason, message: detail });
  }

  /** True when this ended the upstream's auth failure (then the operator is told it is over). */
  authSucceeded(upstream: string): boolean {
    return this.tracker.authSucceeded(upstream);
  }

  endpointState(report: EndpointReport): void {
    this.endpoints.report(report);
  }

  // HttpObserver

  request(method: string, route: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'OTHER';
    const key = `${m} ${route} ${status}`;
    let child = this.httpChildren.get(key);
    if (child === undefined) {
      // Bounded: methods, routes and statuses are small fixed sets, so this map stays small.
      child = { count: this.httpRequests.labels(m, route, String(status)), duration: this.httpDuration.labels(m, route) };
      this.httpChildren.set(key, child);
    }
    child.count.inc();
    child.duration.observe(seconds);
    if (status >= 500) this.history.add('serverErrors');
  }

  answered(kind: 'blob' | 'manifest', source: Source): void {
    const outcome = CLIENT_OUTCOME[source];
    this.clientLookups.labels(kind, outcome).inc();
    this.history.add('lookups');
    if (outcome === 'hit' || outcome === 'stale') this.history.add('hits');
  }

  served(upstream: string, repository: string, source: Source | undefined, bytes: number): void {
    if (bytes <= 0) return;
    if (source !== undefined) {
      this.servedChildren[SERVED_LABEL[source]].inc(bytes);
      this.history.add('bytesServed', bytes);
    }
    this.tracker.served(upstream, repository, bytes);
    if (this.repositoryBytes !== undefined) {
      const key = `${upstream}/${repository}`;
      if (!this.labelledRepositories.has(key) && this.labelledRepositories.size < this.perRepository) this.labelledRepositories.add(key);
      this.repositoryBytes.labels(upstream, this.labelledRepositories.has(key) ? repository : OTHER_REPOSITORY_LABEL).inc(bytes);
    }
  }

  // CacheIndexObserver

  cacheSize(bytes: number, blobs: number): void {
    this.cacheBytes.set(bytes);
    this.cacheBlobs.set(blobs);
  }

  evicted(bytes: number, blobs = 1): void {
    this.evictions.inc(blobs);
    this.evictedBytes.inc(bytes);
  }

  /** StorageHealth's onChange: storage turned full/unwritable (true) or writable again (false). */
  storageState(degraded: boolean): void {
    this.storageDegraded.set(degraded ? 1 : 0);
  }

  // AuditObserver

  auditLines(result: 'written' | 'dropped', lines: number): void {
    this.auditLinesTotal.labels(result).inc(lines);
  }

  // SyncObserver

  syncStarted(job: string, origin?: SyncRunOrigin): void {
    this.tracker.syncStarted(job, origin);
  }

  syncFinished(report: SyncRunReport): void {
    this.syncRuns.labels(report.job, report.result).inc();
    if (report.bytes > 0) this.syncBytes.labels(report.job).inc(report.bytes);
    if (report.images > 0) this.syncImages.labels(report.job).inc(report.images);
    if (report.result === 'success') this.syncLastSuccess.labels(report.job).set((report.finishedAt ?? this.now()) / 1000);
    this.tracker.syncFinished(report);
  }

  /** The exposition text for a scrape. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private counter(name: string, help: string, labelNames: readonly string[]): Counter<string> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge(name: string, help: string, labelNames: readonly string[]): Gauge<string> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
}
