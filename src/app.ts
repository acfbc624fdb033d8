import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DestinationStream } from 'pino';
import type { AccessController } from './access/index.js';
import { CacheAdmin, createAdminSocketServer, holdStorage, releaseStorage } from './admin/index.js';
import { redactRedisUrl, type Config } from './config/index.js';
import { createHttpServer, createOpsServer, Readiness, type OpsEndpoints } from './http/index.js';
import { ManifestReferences, Mirror, PinSet } from './mirror/index.js';
import { createLogger, errorSummary, Metrics, statusSnapshot, type AuditSink, type Logger, type StorageStatus } from './observability/index.js';
import { parseDigest, type RouteContext } from './oci/index.js';
import { BlobCache, type RecoverReport } from './cache/index.js';
import { createMetadataStore, FsBlobStore, StorageHealth, type MetadataStore, type StorageLog } from './storage/index.js';
import { RateLimitLedger, SyncService, syncPinPatterns, type Timers } from './sync/index.js';
import { createUpstream, type Upstream, type UpstreamObserver } from './upstream/index.js';

export interface AppOptions {
  /** Where JSON log lines go (default: stdout). Tests pass a stream to read them. */
  readonly logDestination?: DestinationStream;
  /** The one clock for tag TTLs, token lifetimes, record expiry, rate-limit windows and prune ages. Default Date.now. */
  readonly now?: () => number;
  /** Shown on the status page. */
  readonly version?: string;
  /** The sync scheduler's clock (tests pass fake timers; the work stays real). */
  readonly syncTimers?: Timers;
  /** Who may pull what from the registry API (default: everyone everything). */
  readonly access?: AccessController;
  /** Told about every registry API request (default: nothing). */
  readonly audit?: AuditSink;
}

/** A key no blob has: reading it is a round trip to the metadata store that changes nothing. */
const METADATA_PROBE = parseDigest(`sha256:${'0'.repeat(64)}`);

/**
 * The composition root: builds every part from the Config. Constructors do no I/O, so an App can be
 * built offline; start() recovers storage, opens metadata and listens; close() undoes it, twice safely.
 */
export class App {
  readonly logger: Logger;
  /** Every metric, on this instance's own registry; also the observer of the cache-size/eviction and sync hooks. */
  readonly metrics: Metrics;
  private readonly readiness: Readiness;
  /** The `metrics.listen` listener, when configured. */
  private readonly opsServer: Server | undefined;
  private readonly upstreams: ReadonlyMap<string, Upstream>;
  private readonly metadata: MetadataStore;
  /** The budgeted, pinned, crash-reconciled blob store; `remove(digest)` is the safe delete for admin commands. */
  readonly cache: BlobCache;
  /** Whether storage takes writes; degraded means serving without caching. */
  readonly storageHealth: StorageHealth;
  private readonly server: Server;
  private readonly mirror: Mirror;
  /** The storage's admin socket: holding it is holding the storage (src/admin/storage-owner.ts). */
  private readonly adminServer: Server;
  /** The sync jobs: scheduled inside start(), or run once by `regmirror sync`. */
  readonly sync: SyncService;
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: Config,
    options: AppOptions = {},
  ) {
    this.logger = createLogger(config.log.level, options.logDestination);
    const metrics = (this.metrics = new Metrics({ perRepository: config.metrics.perRepository, cacheMaxBytes: config.storage.maxSize }));
    // Sync reads the rate-limit budget from the same hook that feeds the gauge.
    const now = options.now ?? Date.now;
    const ledger = new RateLimitLedger(now);
    const upstreamObserver: UpstreamObserver = {
      upstreamRequest: (e) => metrics.upstreamRequest(e),
      rateLimitRemaining: (upstream, remaining) => {
        metrics.rateLimitRemaining(upstream, remaining);
        ledger.rateLimitRemaining(upstream, remaining);
      },
    };
    this.upstreams = new Map([...config.upstreams].map(([name, u]) => [name, createUpstream(u, { observer: upstreamObserver, now })]));
    const root = config.storage.path;
    const log: StorageLog = (level, fields, message) => this.logger[level](fields, message);
    // The blob store's temp directory (FsBlobStore layout): every download starts with a file there.
    const health = (this.storageHealth = new StorageHealth({ root, log, onChange: (d) => metrics.storageState(d) }));
    this.metadata = createMetadataStore(config.storage, {
      health,
      now,
      onConnectionChange: (up, reason) =>
        up
          ? this.logger.info('metadata store reachable again')
          : this.logger.warn({ reason }, 'metadata store unreachable: pulls that need it get 503 until it returns'),
    });
    const pins = configuredPins(config);
    const cache = (this.cache = new BlobCache({
      store: new FsBlobStore({ root }),
      root,
      maxSize: config.storage.maxSize,
      minFree: config.storage.minFree,
      now,
      isPinned: (key) => pins.matchesKey(key),
      observer: metrics,
      health,
      // A shared (Redis) record says which upstreams hold the digest, true for every replica: keep it.
      forget: async (digest) => (this.metadata.shared ? undefined : this.metadata.deleteBlob(digest)),
      recordedSize: async (digest) => (await this.metadata.getBlob(digest))?.size,
      log,
    }));
    const references = new ManifestReferences({
      sink: cache,
      links: this.metadata,
      onLinkFailed: (ref, digest, error) =>
        this.logger.warn({ upstream: ref.upstream, repository: ref.name, digest, error: errorSummary(error) }, 'recording repository links failed'),
    });
    const mirror = (this.mirror = new Mirror({
      upstreams: this.upstreams,
      store: cache,
      manifestServed: (ref, digest, mediaType, bytes) => references.served(ref, digest, mediaType, bytes),
      metadata: this.metadata,
      observer: metrics,
      logger: this.logger,
      manifestTTLms: config.manifestTTLms,
      now,
    }));
    metrics.countDownloadsWith(() => mirror.downloadsInFlight);
    this.adminServer = createAdminSocketServer(
      { kind: 'serve', pid: process.pid, command: 'serve' },
      new CacheAdmin({
        root: config.storage.path,
        store: cache,
        metadata: this.metadata,
        // cache.delete refuses a blob a client is reading, updates the budget accounting and drops
        // the metadata record itself (forget, above): nothing more to delete here.
        remover: { remove: (digest) => cache.delete(digest) },
        pinned: async () => new Set(cache.pinnedDigests()),
        tempGraceMs: adminTempGraceMs(config),
        now,
      }),
      (err) => this.logger.error({ error: errorSummary(err) }, 'cache admin command failed'),
    );
    this.sync = new SyncService({
      config: config.sync,
      mirror,
      observer: metrics,
      logger: this.logger,
      ledger,
      timers: options.syncTimers,
    });
    this.readiness = new Readiness([
      // Never "not ready": with storage full or read-only every pull is still served from upstream.
      { name: 'storage', run: async () => storageReadiness(health, cache) },
      { name: 'metadata', run: async () => void (await this.metadata.getBlob(METADATA_PROBE)) },
    ]);
    const upstreamList = [...config.upstreams.values()].map((u) => ({ name: u.name, url: u.url.href }));
    const ops: OpsEndpoints = {
      readiness: this.readiness,
      metrics: () => metrics.exposition(),
      status: async () => {
        const diskLimit = await cache.diskLimit();
        return statusSnapshot(metrics, { upstreams: upstreamList, version: options.version, storage: () => storageStatus(health, cache, diskLimit) });
      },
    };
    // With a metrics listener, the registry port keeps only the probes (it may be public).
    const mainOps = config.metrics.listen === undefined ? ops : { readiness: this.readiness };
    this.server = createHttpServer({
      reader: mirror,
      routes: routeContext(config),
      logger: this.logger,
      ops: mainOps,
      observer: metrics,
      access: options.access,
      audit: options.audit,
    });
    this.opsServer = config.metrics.listen === undefined ? undefined : createOpsServer({ ops, logger: this.logger, observer: metrics });
  }

  /**
   * Holds the storage and opens it, no listener: what `regmirror sync` needs; start() calls it.
   * Holding comes first: recovery deletes every temp file, which only the storage's sole user may do.
   */
  async open(): Promise<RecoverReport> {
    await holdStorage(this.config.storage.path, this.adminServer);
    await this.metadata.open();
    const recovered = await this.cache.recover();
    // Find out now, not at the first pull, whether storage takes writes.
    await this.storageHealth.probe();
    return recovered;
  }

  async start(): Promise<AddressInfo> {
    const recovered = await this.open();
    const address = await listen(this.server, this.config.listen);
    const metricsAddress = this.opsServer && this.config.metrics.listen ? await listen(this.opsServer, this.config.metrics.listen) : undefined;
    this.logger.info(
      {
        address: `${address.address}:${address.port}`,
        ...(metricsAddress ? { metricsAddress: `${metricsAddress.address}:${metricsAddress.port}` } : {}),
        config: redactedConfig(this.config),
        cache: recovered,
      },
      'regmirror listening',
    );
    this.sync.startSchedules();
    return address;
  }

  /** Where the `metrics.listen` listener is bound, once started. */
  metricsAddress(): AddressInfo | undefined {
    return (this.opsServer?.address() ?? undefined) as AddressInfo | undefined;
  }

  /** Resolves when no blob download is in flight (used by shutdown, and by tests to wait for a commit). */
  settled(): Promise<void> {
    return this.mirror.settled();
  }

  /** Stops accepting, gives in-flight transfers `graceMs` to finish, then closes everything. */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      this.readiness.shutdown();
      const syncClosed = this.sync.close();
      const opsClosed = new Promise<void>((resolve) => (this.opsServer ? this.opsServer.close(() => resolve()) : resolve()));
      this.opsServer?.closeAllConnections();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      await Promise.all([closed, opsClosed]);
      clearTimeout(timer);
      // A download whose clients all left may finish and land in the cache before the stores close,
      // within the same grace; closing the upstreams then aborts whatever is still running.
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.all([this.settled(), syncClosed]), deadline]);
      await Promise.all([...this.upstreams.values()].map((u) => u.close().catch((err: unknown) => this.logger.warn({ error: errorSummary(err) }, 'closing upstream failed'))));
      await this.cache.close();
      await this.metadata.close();
      await releaseStorage(this.adminServer);
      this.logger.flush();
    })();
    return this.closing;
  }
}

/** `storage.pin` and the repositories sync keeps: what eviction and `cache gc` leave alone. */
export function configuredPins(config: Config): PinSet {
  return new PinSet(config.storage.pin).with(syncPinPatterns(config.sync));
}

/**
 * A temp file untouched for longer than any upstream may stay silent (bodyIdle, after which the
 * download is aborted and its file removed) belongs to no download: `cache gc` may remove it.
 */
function adminTempGraceMs(config: Config): number {
  const idle = Math.max(0, ...[...config.upstreams.values()].map((u) => u.timeouts.bodyIdleMs));
  return Math.max(15 * 60_000, 2 * idle);
}

/** Degraded, not unready: while storage is unwritable or the disk is the limit, pulls stream without caching. */
async function storageReadiness(health: StorageHealth, cache: BlobCache): Promise<{ degraded: string } | undefined> {
  if (!(await health.probe())) return { degraded: `not writable (${health.degraded?.reason ?? 'unknown'}): serving without caching` };
  const limit = await cache.diskLimit();
  return limit === undefined ? undefined : { degraded: limit };
}

function storageStatus(health: StorageHealth, cache: BlobCache, diskLimit: string | undefined): StorageStatus {
  const degraded = health.degraded;
  return {
    state: degraded || diskLimit ? 'degraded' : 'ok',
    reason: degraded?.reason ?? diskLimit ?? null,
    degradedSince: degraded ? new Date(degraded.since).toISOString() : null,
    pinnedBytes: cache.pinnedBytes,
  };
}

function listen(server: Server, { host, port }: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function routeContext(config: Config): RouteContext {
  const aliases = new Map<string, string>();
  for (const u of config.upstreams.values()) for (const alias of u.aliases) aliases.set(alias, u.name);
  return {
    upstreams: new Map([...config.upstreams].map(([name, u]) => [name, { officialLibrary: u.officialLibrary }])),
    aliases,
    defaultUpstream: config.defaultUpstream,
  };
}

/** The effective config for the start-up log line: every secret replaced, URLs as strings. */
export function redactedConfig(config: Config): unknown {
  const { metadata } = config.storage;
  return {
    ...config,
    storage: { ...config.storage, metadata: metadata.kind === 'redis' ? { ...metadata, url: redactRedisUrl(metadata.url) } : metadata },
    upstreams: Object.fromEntries(
      [...config.upstreams].map(([name, { password, ...u }]) => [
        name,
        // No key at all for an anonymous upstream: the logger's redaction would print '[redacted]' for
        // an undefined password too, which reads as if a secret were configured.
        { ...u, url: u.url.href, ...(password === undefined ? {} : { password: '[redacted]' }) },
      ]),
    ),
  };
}
