import type { Counter, Gauge } from 'prom-client';
import type { MemberState } from '../cluster/index.js';
import type { ClusterStatus } from './cluster-metrics.js';
import { isUpstreamError, type Metrics, type ServedLabel } from './metrics.js';
import type { HistorySnapshot } from './history.js';
import type { EndpointStatus } from './endpoint-status.js';
import type { SyncRunOrigin } from './observers.js';
import type { SyncJobState, UpstreamState } from './status-tracker.js';

/** Upstreams as the status page shows them: name and API origin (config forbids credentials in it). */
export interface StatusUpstreamInfo {
  readonly name: string;
  /** null for an offline upstream configured without one. */
  readonly url: string | null;
  /** Never contacted: shown as state `offline` rather than the `unknown` of an upstream not asked yet. */
  readonly offline?: boolean;
  /** The proxy its requests to `url` go through, credentials redacted; null or absent when direct. */
  readonly proxy?: string | null;
  /** TLS certificates are not checked (`insecureSkipVerify`). */
  readonly insecureSkipVerify?: boolean;
}

/** `negative`: a remembered upstream 404 (notFoundTTL); no content, so left out of the hit ratio. */
type Lookups = Record<'hit' | 'miss' | 'coalesced' | 'stale' | 'negative', number>;

/** Whether the storage takes writes, and what pins hold; the App reads it from the cache. */
export interface StorageStatus {
  readonly state: 'ok' | 'degraded';
  /** The error code that degraded it (ENOSPC, EROFS, …), or why the disk is the limit (no room for a blob); null while ok. */
  readonly reason: string | null;
  readonly degradedSince: string | null;
  readonly pinnedBytes: number;
}

/** How nodes reach the registry port: the page fills its node snippets with it. */
export interface RegistryEndpoint {
  readonly scheme: 'http' | 'https';
  /** null when listening on every address: the page then uses the host it was loaded from. */
  readonly host: string | null;
  readonly port: number;
  /** The upstream served without a path prefix. */
  readonly defaultUpstream: string;
}

/** One upstream blob download running now. */
export interface InFlightStatus {
  readonly upstream: string;
  readonly repository: string;
  readonly digest: string;
  readonly bytes: number;
  readonly size: number | null;
  readonly startedAt: string;
  /** Average bytes per second since it started; null in its first moment. */
  readonly bytesPerSecond: number | null;
  readonly followers: number;
}

/** The JSON of `/api/status`: what the status page renders and what a CLI may print. */
export interface StatusSnapshot {
  readonly service: 'regmirror';
  readonly version: string | undefined;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly cache: {
    readonly sizeBytes: number;
    readonly maxSizeBytes: number | null;
    /** sizeBytes / maxSizeBytes, 0…1 (more when over budget); null without a budget. */
    readonly fill: number | null;
    readonly blobs: number;
    readonly evictions: number;
    readonly evictedBytes: number;
  };
  readonly traffic: {
    /** Manifest and blob answers to clients (sync and exports left out). */
    readonly lookups: { readonly blob: Lookups; readonly manifest: Lookups };
    /** (hit + stale) / client lookups since start, blobs and manifests together; null before any. */
    readonly hitRatio: number | null;
    /** Blob bytes sent to clients by where they came from, in the served-bytes metric's terms (a stale copy counts as cache, a coalesced follower as upstream). */
    readonly bytesServed: Readonly<Record<ServedLabel, number>>;
    /** Blob bytes the upstreams sent, once per download however many clients followed it (sync's included). */
    readonly bytesDownloaded: number;
    /** Blob bytes served minus bytes downloaded: what the upstreams did not have to send; never below 0 (synced bytes no client pulled yet). */
    readonly bytesSaved: number;
    readonly downloadsInFlight: number;
    readonly digestMismatches: number;
  };
  readonly topRepositories: readonly { readonly upstream: string; readonly repository: string; readonly bytes: number }[];
  readonly upstreams: readonly {
    readonly name: string;
    readonly url: string | null;
    readonly state: UpstreamState | 'offline';
    readonly lastStatus: number | 'error' | null;
    readonly lastRequestAt: string | null;
    readonly rateLimitRemaining: number | null;
    readonly requests: number;
    readonly errors: number;
    /** The last failure an operator should see (no answer, 5xx, 429, bad answer, rejected credentials), one line, and when. */
    readonly lastError: { readonly at: string; readonly cause: string } | null;
    /** The proxy its requests go through (credentials redacted), null when direct. */
    readonly proxy: string | null;
    /** Its TLS certificates are not checked (`upstreams.<name>.insecureSkipVerify`). */
    readonly insecureSkipVerify: boolean;
    /** Each of `upstreams.<name>.endpoints` in the order tried; [] for an upstream with one URL. */
    readonly endpoints: readonly EndpointStatus[];
    /** While state is `auth-failed`: the mirror's credentials were rejected, or withheld from a realm outside the upstream's domain. */
    readonly authFailure: { readonly at: string; readonly reason: 'rejected' | 'withheld'; readonly message: string } | null;
  }[];
  /** How many upstreams are reached without checking their TLS certificates. */
  readonly insecureSkipVerifyUpstreams: number;
  /** Every configured sync entry (run or not yet), then any other job that reported a run. */
  readonly sync: readonly {
    readonly job: string;
    /** As configured ("6h", "0 3 * * *"); null: only runOnStart, the CLI and the API run it. */
    readonly schedule: string | null;
    readonly nextRunAt: string | null;
    readonly running: boolean;
    readonly runningSince: string | null;
    readonly runningOrigin: SyncRunOrigin | null;
    /** Who started the last finished run. */
    readonly lastOrigin: SyncRunOrigin | null;
    readonly lastResult: 'success' | 'failure' | null;
    readonly lastRunAt: string | null;
    readonly lastSuccessAt: string | null;
    readonly lastError: string | null;
    readonly bytes: number;
    readonly images: number;
    readonly lastRun: { readonly startedAt: string | null; readonly finishedAt: string | null; readonly images: number; readonly bytes: number; readonly errors: number } | null;
    /** Replicas on one Redis: the last run this one skipped because another replica held the entry. */
    readonly lastSkipped?: { readonly at: string; readonly reason: string } | null;
  }[];
  readonly inFlight: readonly InFlightStatus[];
  /** Per-minute sums over the last hours, for the page's charts. */
  readonly history: HistorySnapshot;
  /** Absent where no storage is attached (a status built from metrics alone). */
  readonly storage?: StorageStatus;
  /** `policy`: how many rules, and manifest requests under them by outcome since start. */
  readonly policy: { readonly rules: number; readonly decisions: Readonly<Record<'allowed' | 'refused' | 'warned' | 'exempt', number>> };
  /** Absent where the status is built without a listener (tests of the numbers alone). */
  readonly endpoint?: RegistryEndpoint;
  /** When the config in force was loaded, and how the last reload (SIGHUP) went; absent where nothing reloads. */
  readonly config?: ConfigStatus;
  /** With `cluster` only. */
  readonly cluster?: ClusterStatus;
}

/** What one config reload (SIGHUP or POST /api/reload) came to. */
export interface ReloadOutcome {
  readonly ok: boolean;
  readonly error?: string;
  /** Keys applied. */
  readonly changed: readonly string[];
  /** Keys that changed in the file but keep their running value until a restart. */
  readonly restartNeeded: readonly string[];
}

export interface ConfigStatus {
  readonly loadedAt: string;
  readonly lastReload: {
    readonly at: string;
    /** false: refused, the config before it stays in force. */
    readonly ok: boolean;
    /** Why it was refused (a config error with its key or position). */
    readonly error?: string;
    /** Changed keys that keep their running value until a restart (`listen`, `storage.path`, …). */
    readonly restartNeeded: readonly string[];
  } | null;
}

export interface StatusOptions {
  readonly upstreams: readonly StatusUpstreamInfo[];
  readonly version?: string;
  readonly topRepositories?: number;
  readonly now?: () => number;
  readonly storage?: () => StorageStatus;
  /** How many `policy` rules are configured. */
  readonly policyRules?: number;
  readonly endpoint?: () => RegistryEndpoint | undefined;
  /** The configured sync entries, their schedule and next planned run. */
  readonly syncEntries?: () => readonly StatusSyncEntry[];
  readonly config?: () => ConfigStatus;
  /** With `cluster`: the members as this replica sees them. */
  readonly cluster?: () => readonly MemberState[];
}

export interface StatusSyncEntry {
  readonly job: string;
  readonly schedule: string | null;
  /** ms since epoch; undefined when nothing is planned. */
  readonly nextRunAt: number | undefined;
  /** ms since epoch: the last run skipped here because another replica ran it. */
  readonly lastSkippedAt?: number | undefined;
}

/** Reads the live numbers out of the metrics (one source of truth for the page and for Prometheus). */
export async function statusSnapshot(metrics: Metrics, options: StatusOptions): Promise<StatusSnapshot> {
  const now = (options.now ?? Date.now)();
  const lookups = await values(metrics.clientLookups);
  const lookupsOf = (kind: string): Lookups => ({
    hit: sum(lookups, { kind, outcome: 'hit' }),
    miss: sum(lookups, { kind, outcome: 'miss' }),
    coalesced: sum(lookups, { kind, outcome: 'coalesced' }),
    stale: sum(lookups, { kind, outcome: 'stale' }),
    negative: sum(lookups, { kind, outcome: 'negative' }),
  });
  const blob = lookupsOf('blob');
  const manifest = lookupsOf('manifest');
  const total = [blob, manifest].reduce((n, l) => n + l.hit + l.miss + l.coalesced + l.stale, 0);
  const fromCache = blob.hit + blob.stale + manifest.hit + manifest.stale;
  const served = await values(metrics.servedBytes);
  const bytesServed = { cache: sum(served, { source: 'cache' }), upstream: sum(served, { source: 'upstream' }) };
  const bytesDownloaded = sum(await values(metrics.downloadedBytes), {});
  const sizeBytes = sum(await values(metrics.cacheBytes), {});
  const maxSizeBytes = metrics.cacheMaxBytes ?? null;
  const upstreamRequests = await values(metrics.upstreamRequests);
  const rateLimits = await values(metrics.rateLimit);
  const syncBytes = await values(metrics.syncBytes);
  const syncImages = await values(metrics.syncImages);
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

  return {
    service: 'regmirror',
    version: options.version,
    startedAt: new Date(metrics.startedAt).toISOString(),
    uptimeSeconds: Math.max(0, Math.round((now - metrics.startedAt) / 1000)),
    cache: {
      sizeBytes,
      maxSizeBytes,
      fill: maxSizeBytes ? sizeBytes / maxSizeBytes : null,
      blobs: sum(await values(metrics.cacheBlobs), {}),
      evictions: sum(await values(metrics.evictions), {}),
      evictedBytes: sum(await values(metrics.evictedBytes), {}),
    },
    traffic: {
      lookups: { blob, manifest },
      hitRatio: total === 0 ? null : fromCache / total,
      bytesServed,
      bytesDownloaded,
      bytesSaved: Math.max(0, bytesServed.cache + bytesServed.upstream - bytesDownloaded),
      downloadsInFlight: sum(await values(metrics.downloadsInFlight), {}),
      digestMismatches: sum(await values(metrics.digestMismatches), {}),
    },
    topRepositories: metrics.tracker.topRepositories(options.topRepositories ?? 10),
    upstreams: options.upstreams.map(({ name, url, offline, proxy, insecureSkipVerify }) => {
      const seen = metrics.tracker.upstreams.get(name);
      const limit = rateLimits.find((v) => v.labels['upstream'] === name);
      const requests = upstreamRequests.filter((v) => v.labels['upstream'] === name);
      return {
        name,
        url,
        state: offline === true ? 'offline' : seen?.authFailure !== undefined ? 'auth-failed' : (seen?.state ?? 'unknown'),
        lastStatus: seen?.lastStatus ?? null,
        lastRequestAt: iso(seen?.lastRequestAt),
        rateLimitRemaining: limit?.value ?? null,
        requests: requests.reduce((n, v) => n + v.value, 0),
        errors: requests.filter((v) => isUpstreamError(v.labels['status'])).reduce((n, v) => n + v.value, 0),
        lastError: seen?.lastError === undefined ? null : { at: new Date(seen.lastError.at).toISOString(), cause: seen.lastError.cause },
        proxy: proxy ?? null,
        insecureSkipVerify: insecureSkipVerify === true,
        endpoints: metrics.endpoints.of(name),
        authFailure: seen?.authFailure === undefined ? null : { ...seen.authFailure, at: new Date(seen.authFailure.at).toISOString() },
      };
    }),
    insecureSkipVerifyUpstreams: options.upstreams.filter((u) => u.insecureSkipVerify === true).length,
    sync: syncJobs(metrics, options.syncEntries?.() ?? []).map(({ job, schedule, nextRunAt, lastSkippedAt, state: s }) => ({
      job,
      schedule,
      nextRunAt: iso(nextRunAt),
      running: s.running,
      runningSince: iso(s.runningSince),
      runningOrigin: s.runningOrigin ?? null,
      lastOrigin: s.lastOrigin ?? null,
      lastResult: s.lastResult ?? null,
      lastRunAt: iso(s.lastRunAt),
      lastSuccessAt: iso(s.lastSuccessAt),
      lastError: s.lastError ?? null,
      bytes: sum(syncBytes, { job }),
      images: sum(syncImages, { job }),
      lastRun: s.lastRun === undefined ? null : { ...s.lastRun, startedAt: iso(s.lastRun.startedAt), finishedAt: iso(s.lastRun.finishedAt) },
      lastSkipped: lastSkippedAt === undefined ? null : { at: new Date(lastSkippedAt).toISOString(), reason: 'running on another replica' },
    })),
    inFlight: metrics.downloadsNow().map((d) => {
      const seconds = (now - d.startedAt) / 1000;
      return {
        upstream: d.upstream,
        repository: d.repository,
        digest: d.digest,
        bytes: d.bytes,
        size: d.size ?? null,
        startedAt: new Date(d.startedAt).toISOString(),
        bytesPerSecond: seconds > 0 ? Math.round(d.bytes / seconds) : null,
        followers: d.followers,
      };
    }),
    history: metrics.history.snapshot(),
    ...(options.storage ? { storage: options.storage() } : {}),
    policy: { rules: options.policyRules ?? 0, decisions: decisionsOf(await values(metrics.policyDecisions)) },
    ...withEndpoint(options.endpoint?.()),
    ...(options.config ? { config: options.config() } : {}),
    ...(options.cluster ? { cluster: await metrics.cluster.status(options.cluster()) } : {}),
  };
}

const NEVER_RAN: SyncJobState = {
  running: false,
  lastResult: undefined,
  lastRunAt: undefined,
  lastSuccessAt: undefined,
  lastError: undefined,
  runningOrigin: undefined,
  runningSince: undefined,
  lastOrigin: undefined,
  lastRun: undefined,
};

/** The configured entries in config order, each with what the tracker saw; then jobs only the tracker knows. */
function syncJobs(metrics: Metrics, configured: readonly StatusSyncEntry[]): (StatusSyncEntry & { state: SyncJobState })[] {
  const seen = metrics.tracker.syncJobs;
  const names = new Set(configured.map((e) => e.job));
  return [
    ...configured.map((e) => ({ ...e, state: seen.get(e.job) ?? NEVER_RAN })),
    ...[...seen].filter(([job]) => !names.has(job)).map(([job, state]) => ({ job, schedule: null, nextRunAt: undefined, state })),
  ];
}

function decisionsOf(samples: readonly Sample[]): StatusSnapshot['policy']['decisions'] {
  const of = (outcome: string) => sum(samples, { outcome });
  return { allowed: of('allowed'), refused: of('refused'), warned: of('warned'), exempt: of('exempt') };
}

function withEndpoint(endpoint: RegistryEndpoint | undefined): { endpoint?: RegistryEndpoint } {
  return endpoint === undefined ? {} : { endpoint };
}

interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number | undefined>>;
}

async function values(metric: Counter<string> | Gauge<string>): Promise<Sample[]> {
  return (await metric.get()).values;
}

function sum(samples: readonly Sample[], match: Readonly<Record<string, string>>): number {
  let n = 0;
  for (const s of samples) if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) n += s.value;
  return n;
}
