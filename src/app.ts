import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DestinationStream } from 'pino';
import { CacheAdmin, createAdminSocketServer, holdStorage, listImages, releaseStorage } from './admin/index.js';
import type { Credentials, TokenService } from './auth/index.js';
import type { Config } from './config/index.js';
import { createHttpServer, createHttpsServer, createOpsServer, listenFanned, Readiness, ResponsesInFlight, TlsReloader, type AcceptFan, type HttpServerOptions, type OpsEndpoints } from './http/index.js';
import { Ingest, ManifestReferences, Mirror, type PinSet } from './mirror/index.js';
import { AuditLog, createLogger, errorSummary, logDestination, Metrics, noopAudit, statusSnapshot, type AuditSink, type Logger, type ReloadOutcome } from './observability/index.js';
import { BlobCache, PinFile, type RecoverReport } from './cache/index.js';
import { createMetadataStore, FsBlobStore, StorageHealth, verifierFor, type MetadataStore, type StorageLog } from './storage/index.js';
import { RateLimitLedger, SyncService, syncAdminRoutes, type Timers } from './sync/index.js';
import { adminTempGraceMs, ClusterNode, configuredPins, upstreamFactory, redactedConfig, registryEndpoint, routeContext, mirrorTTLs, upstreamStatusInfo } from './app-config.js';
import { storageChecks, storageStatus } from './storage-state.js';
import { TrustBoundary, type TrustOptions } from './trust-boundary.js';
import { listeningFields } from './listeners.js';
import { ConfigReload } from './config-reload.js';
import { localImportTarget, mirrorExportSource, transferRoutes, type ExportSource, type ImportTarget } from './transfer/index.js';
export { configuredPins, redactedConfig, routeContext } from './app-config.js';
export interface AppOptions extends TrustOptions {
  /** Where JSON log lines go (default: stdout). Tests pass a stream to read them. */
  readonly logDestination?: DestinationStream;
  /** The one clock for tag TTLs, token lifetimes, record expiry, rate-limit windows and prune ages. Default Date.now. */
  readonly now?: () => number;
  /** Shown on the status page. */
  readonly version?: string;
  /** The sync scheduler's clock (tests pass fake timers; the work stays real). */
  readonly syncTimers?: Timers;
  /** Told about every registry API request; overrides `config.audit` (default: the audit log it configures, else nothing). */
  readonly audit?: AuditSink;
  /** How often the `tls` files are re-read besides watching them (default 30 s). */
  readonly tlsCheckIntervalMs?: number;
  /** What holds the storage, as others are told (`regmirror import` opens an App too). Default `serve`. */
  readonly command?: string;
  /** Accept handles added to each registry listener (src/http/accept-fan.ts); `serve` adds some, default none. */
  readonly extraAcceptHandles?: number;
  /** Loads the config file again, as SIGHUP does: with it, POST /api/reload reloads (`serve` passes it). */
  readonly loadConfig?: () => Promise<Config>;
}

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
  private readonly metadata: MetadataStore;
  /** The budgeted, pinned, crash-reconciled blob store; `remove(digest)` is the safe delete for admin commands. */
  readonly cache: BlobCache;
  /** Whether storage takes writes; degraded means serving without caching. */
  readonly storageHealth: StorageHealth;
  /** The `listen` listener: HTTPS when `tls` is set without `tls.listen`. */
  private readonly server: Server;
  /** The `tls.listen` listener, when configured. */
  private readonly tlsServer: Server | undefined;
  /** Serves renewed certificates to whichever listener speaks HTTPS. */
  private readonly tlsReloader: TlsReloader | undefined;
  private readonly mirror: Mirror;
  /** The config in force: upstream clients, the policy gate, and what SIGHUP changes in place (src/config-reload.ts). */
  private readonly live: ConfigReload;
  readonly cluster: ClusterNode | undefined;
  /** The storage's admin socket: holding it is holding the storage (src/admin/storage-owner.ts). */
  private readonly adminServer: Server;
  /** The sync jobs: scheduled inside start(), or run once by `regmirror sync`. */
  readonly sync: SyncService;
  /** Credentials, tokens, the read policy and the token endpoint (src/trust-boundary.ts). */
  private readonly trust: TrustBoundary;
  /** Where audit events go (the token endpoint records its own there too). */
  readonly audit: AuditSink;
  /** The `audit` config's log, when this App built it: opened by start(), flushed and closed by close(). */
  private readonly auditLog: AuditLog | undefined;
  /** Export reads through the mirror's pull path; import writes through the verified ingest. Also served on the admin socket. */
  readonly transfer: { readonly source: ExportSource; readonly target: ImportTarget };
  /** `storage.pin`, the sync repositories and the storage's own pin file (loaded by open()). */
  private pins: PinSet;
  private readonly pinFile: PinFile;
  private readonly extraAcceptHandles: number;
  private readonly fans: AcceptFan[] = []; // the listeners' extra accept handles, closed with them
  private closing: Promise<void> | undefined;
  private readonly responses = new ResponsesInFlight();
  /** Responses still being sent when the shutdown grace ran out, and so cut short. */
  private cutAtShutdown = 0;

  constructor(
    readonly config: Config,
    options: AppOptions = {},
  ) {
    const destination = options.logDestination ?? logDestination();
    this.logger = createLogger(config.log.level, destination);
    const auditConfig = options.audit === undefined ? config.audit : undefined;
    const metrics = (this.metrics = new Metrics({ perRepository: config.metrics.perRepository, cacheMaxBytes: config.storage.maxSize, audit: auditConfig !== undefined }));
    this.auditLog =
      auditConfig === undefined
        ? undefined
        : new AuditLog({ config: auditConfig, trustedProxies: config.access.trustedProxies, logger: this.logger, stdout: destination, observer: metrics, now: options.now });
    this.audit = options.audit ?? this.auditLog ?? noopAudit;
    const now = options.now ?? Date.now;
    const ledger = new RateLimitLedger(now);
    this.live = new ConfigReload(config, {
      logger: this.logger, observer: metrics, now, createUpstream: upstreamFactory(metrics, ledger, now, this.logger),
      // `policy`: what the mirror serves to clients passes through its gate (src/policy).
      policy: () => ({ inner: this.mirror, deps: { observer: metrics, logger: this.logger, ttlMs: config.manifestTTLms } }),
      sync: { reconfigure: (c) => this.sync.reconfigure(c) },
      pins: { replace: (p) => void (this.pins = p), of: async (c) => configuredPins(c).with(await this.pinFile.load()), repin: () => this.cache.repin() },
    });
    const root = config.storage.path;
    const log: StorageLog = (level, fields, message) => this.logger[level](fields, message);
    // The blob store's temp directory (FsBlobStore layout): every download starts with a file there.
    const health = (this.storageHealth = new StorageHealth({ root, log, onChange: (d) => metrics.storageState(d) }));
    this.metadata = createMetadataStore(config.storage, {
      health,
      now,
      onConnectionChange: (up, reason) =>
        up ? this.logger.info('metadata store reachable again') : this.logger.warn({ reason }, 'metadata store unreachable: pulls that need it get 503 until it returns'),
    });
    this.pins = configuredPins(config);
    this.pinFile = new PinFile(root);
    this.extraAcceptHandles = options.extraAcceptHandles ?? 0;
    const createVerifier = verifierFor(config.storage.hashThread);
    const cache = (this.cache = new BlobCache({
      store: new FsBlobStore({ root, createVerifier }),
      root,
      maxSize: config.storage.maxSize,
      minFree: config.storage.minFree,
      now,
      // Read at every decision: `import --pin` adds repositories while the server runs.
      isPinned: (key) => this.pins.matchesKey(key),
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
    const trust = (this.trust = new TrustBoundary(config, { logger: this.logger, now, audit: this.audit, routes: routeContext(config) }, options));
    const access = trust.access;
    const mirror = (this.mirror = new Mirror({
      createVerifier,
      upstreams: this.live.upstreams,
      store: cache,
      manifestServed: (ref, digest, mediaType, bytes) => references.served(ref, digest, mediaType, bytes),
      metadata: this.metadata, leases: this.metadata.leases,
      observer: metrics,
      logger: this.logger,
      ...mirrorTTLs(config),
      now,
      // With a read policy, repositories of one upstream differ in who may read them.
      repositoryScoped: config.auth !== undefined, routing: (this.cluster = ClusterNode.from(config, { observer: metrics.cluster, logger: this.logger, now }))?.routing,
    }));
    metrics.watchDownloads(() => mirror.downloadsNow());
    this.transfer = {
      source: mirrorExportSource(mirror),
      target: localImportTarget({
        store: cache,
        ingest: new Ingest({ store: cache, metadata: this.metadata, now, createVerifier }),
        references: cache,
        referrers: this.metadata,
        now,
        pin: async (pattern) => {
          await this.pinFile.add([pattern]);
          this.pins = this.pins.with([pattern]);
        },
      }),
    };
    this.sync = new SyncService({ config: config.sync, mirror, observer: metrics, logger: this.logger, ledger, timers: options.syncTimers, leases: this.metadata.leases });
    const logAdminError = (err: unknown) => this.logger.error({ error: errorSummary(err) }, 'cache admin command failed');
    this.adminServer = createAdminSocketServer(
      { kind: 'serve', pid: process.pid, command: options.command ?? 'serve' },
      new CacheAdmin({
        root: config.storage.path,
        store: cache,
        metadata: this.metadata,
        // cache.delete refuses a blob a client is reading, updates the budget accounting and drops
        // the metadata record itself (forget, above): nothing more to delete here.
        remover: { remove: (digest) => cache.delete(digest) },
        pinned: async () => new Set(cache.pinnedDigests()),
        isPinned: (upstream, repository) => this.pins.matches(upstream, repository),
        tempGraceMs: adminTempGraceMs(config),
        now,
      }),
      logAdminError,
      {
        tokens: trust.credentials.tokens,
        routes: [
          transferRoutes({ ...this.transfer, upstreams: new Set(config.upstreams.keys()), onError: logAdminError }),
          // `sync --list` prints what /api/status says of each entry.
          syncAdminRoutes({ sync: this.sync, list: async () => (await status()).sync }),
        ],
      },
    );
    this.readiness = new Readiness(storageChecks(health, cache, this.metadata));
    const upstreamList = upstreamStatusInfo(config);
    const status = async () => {
      const [diskLimit, endpoint] = [await cache.diskLimit(), () => registryEndpoint(config, this.tlsServer ?? this.server)];
      const syncEntries = () => this.sync.states();
      return statusSnapshot(metrics, { upstreams: upstreamList, version: options.version, policyRules: this.live.config.policy.length, storage: () => storageStatus(health, cache, diskLimit), endpoint, syncEntries, cluster: this.cluster && (() => this.cluster?.membership.states() ?? []), config: () => this.live.status() });
    };
    const images = () => listImages({ store: cache, metadata: this.metadata, isPinned: (key) => this.pins.matchesKey(key) });
    const { loadConfig } = options;
    const reload = loadConfig && (() => this.reload(loadConfig));
    const ops: OpsEndpoints = { readiness: this.readiness, metrics: () => metrics.exposition(), status, images, syncNow: (entry) => this.sync.start(entry, 'api'), ...(reload ? { reload } : {}) };
    // With a metrics listener, the registry port keeps only the probes (it may be public).
    const mainOps = config.metrics.listen === undefined ? ops : { readiness: this.readiness };
    const registry: HttpServerOptions = {
      reader: this.live.reader, routes: routeContext(config), logger: this.logger, ops: mainOps, observer: metrics, access, audit: this.audit,
      tokens: trust.tokenEndpoint, catalog: mirror, trustedProxies: config.access.trustedProxies,
      inFlight: this.responses, peers: this.cluster?.endpoint(mirror, config.upstreams.keys()),
    };
    const tls = config.tls;
    const https = tls === undefined ? undefined : createHttpsServer(registry, { clientCertificates: tls.clientCA !== undefined });
    this.server = https !== undefined && tls?.listen === undefined ? https : createHttpServer(registry);
    this.tlsServer = tls?.listen === undefined ? undefined : https;
    this.cluster?.attach(this.server);
    this.tlsReloader =
      tls === undefined || https === undefined
        ? undefined
        : new TlsReloader({ files: tls, apply: (context) => https.setSecureContext(context), logger: this.logger, checkIntervalMs: options.tlsCheckIntervalMs });
    this.opsServer = config.metrics.listen === undefined ? undefined : createOpsServer({ ops, logger: this.logger, observer: metrics, access });
  }

  /**
   * Holds the storage and opens it, no listener: what `regmirror sync` needs; start() calls it.
   * Holding comes first: recovery deletes every temp file, which only the storage's sole user may do.
   */
  async open(): Promise<RecoverReport> {
    await holdStorage(this.config.storage.path, this.adminServer);
    await this.trust.open();
    // Before recovery: the cache index decides what is pinned as it loads.
    this.pins = configuredPins(this.config).with(await this.pinFile.load());
    await this.metadata.open();
    const recovered = await this.cache.recover();
    // Find out now, not at the first pull, whether storage takes writes.
    await this.storageHealth.probe();
    return recovered;
  }

  async start(): Promise<AddressInfo> {
    const recovered = await this.open();
    await this.trust.start(this.logger);
    await this.live.open();
    // Before the listener: an audit path that cannot be written is a start-up failure, not a silent gap.
    await this.auditLog?.open();
    // Before listening: a listener without its certificate would fail every handshake.
    const certificate = await this.tlsReloader?.start();
    const address = await this.listenRegistry(this.server, this.config.listen);
    const tlsAddress = this.tlsServer && this.config.tls?.listen ? await this.listenRegistry(this.tlsServer, this.config.tls.listen) : undefined;
    const metricsAddress = this.opsServer && this.config.metrics.listen ? await this.listenRegistry(this.opsServer, this.config.metrics.listen, 0) : undefined;
    this.logger.info(
      { ...listeningFields(address, certificate, tlsAddress, metricsAddress), config: redactedConfig(this.config), cache: recovered },
      'regmirror listening',
    );
    this.sync.startSchedules();
    return address;
  }

  private async listenRegistry(server: Server, at: { host: string; port: number }, extra = this.extraAcceptHandles): Promise<AddressInfo> {
    const { address, fan } = await listenFanned(server, at, extra, this.logger);
    this.fans.push(fan);
    return address;
  }

  /** SIGHUP: re-read the config (`load`) and apply what may change while serving (src/config-reload.ts). */
  reload(load: () => Promise<Config>): Promise<ReloadOutcome> {
    return this.live.reload(load);
  }

  /** SIGHUP: reopen the audit file at its path, after logrotate (`create` mode) moved it away. */
  reopenLogs(): void {
    this.auditLog?.reopen();
  }

  /** Where HTTPS is served once started (`tls.listen`, or `listen` itself); undefined without `tls`. */
  tlsAddress(): AddressInfo | undefined {
    if (this.config.tls === undefined) return undefined;
    return ((this.tlsServer ?? this.server).address() ?? undefined) as AddressInfo | undefined;
  }

  /** htpasswd users and robot tokens (`regmirror token` works on them through the admin socket). */
  get credentials(): Credentials {
    return this.trust.credentials;
  }

  /** With `auth`: the mirror's bearer tokens. */
  get tokens(): TokenService | undefined {
    return this.trust.tokens;
  }

  /** Where the `metrics.listen` listener is bound, once started. */
  metricsAddress(): AddressInfo | undefined {
    return (this.opsServer?.address() ?? undefined) as AddressInfo | undefined;
  }

  /** Resolves when no blob download is in flight (used by shutdown, and by tests to wait for a commit). */
  settled(): Promise<void> {
    return this.mirror.settled();
  }

  /** What a shutdown waits for: responses being sent, and downloads (also those whose clients left). */
  inFlight(): { transfers: number; downloads: number; cutShort: number; started: number } {
    return { transfers: this.responses.count, downloads: this.mirror.downloadsInFlight, cutShort: this.cutAtShutdown, started: this.responses.started };
  }

  /** Stops accepting, gives in-flight transfers `graceMs` to finish, then closes everything. */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      this.readiness.shutdown();
      const syncClosed = this.sync.close();
      const opsClosed = new Promise<void>((resolve) => (this.opsServer ? this.opsServer.close(() => resolve()) : resolve()));
      this.opsServer?.closeAllConnections();
      this.tlsReloader?.close();
      const registryServers = this.tlsServer === undefined ? [this.server] : [this.server, this.tlsServer];
      const closed = [...registryServers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))), ...this.fans.map((fan) => fan.close())];
      for (const server of registryServers) server.closeIdleConnections();
      const timer = setTimeout(() => ((this.cutAtShutdown = this.responses.count), registryServers.forEach((server) => server.closeAllConnections())), graceMs);
      await Promise.all([...closed, opsClosed]);
      clearTimeout(timer);
      // A download whose clients all left may finish and land in the cache before the stores close,
      // within the same grace; closing the upstreams then aborts whatever is still running.
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.all([this.settled(), syncClosed]), deadline]);
      await this.live.closeUpstreams((err) => this.logger.warn({ error: errorSummary(err) }, 'closing upstream failed'));
      // The downloads that closing aborted log their failure before the stores close and `stopped` is said.
      await Promise.race([this.settled(), new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
      // Every request has been recorded by now (the listener is closed): write the rest out.
      await this.auditLog?.close();
      await this.cache.close();
      await this.metadata.close();
      await this.trust.close();
      await releaseStorage(this.adminServer);
      this.logger.flush();
    })();
    return this.closing;
  }
}
