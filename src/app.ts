import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import type { Config } from './config/index.js';
import { createHttpServer, createOpsServer, Readiness, storageWritable, type OpsEndpoints } from './http/index.js';
import { Mirror } from './mirror/index.js';
import { createLogger, errorSummary, Metrics, statusSnapshot, type Logger } from './observability/index.js';
import { parseDigest, type RouteContext } from './oci/index.js';
import { FileKvStore, FsBlobStore, KeyvMetadataStore, type MetadataStore } from './storage/index.js';
import { RateLimitLedger, SyncService, type Timers } from './sync/index.js';
import { createUpstream, type Upstream, type UpstreamObserver } from './upstream/index.js';

export interface AppOptions {
  /** Where JSON log lines go (default: stdout). Tests pass a stream to read them. */
  readonly logDestination?: DestinationStream;
  readonly now?: () => number;
  /** Shown on the status page. */
  readonly version?: string;
  /** The sync scheduler's clock (tests pass fake timers; the work stays real). */
  readonly syncTimers?: Timers;
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
  private readonly blobStore: FsBlobStore;
  private readonly server: Server;
  private readonly mirror: Mirror;
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
    const ledger = new RateLimitLedger(options.now);
    const upstreamObserver: UpstreamObserver = {
      upstreamRequest: (e) => metrics.upstreamRequest(e),
      rateLimitRemaining: (upstream, remaining) => {
        metrics.rateLimitRemaining(upstream, remaining);
        ledger.rateLimitRemaining(upstream, remaining);
      },
    };
    this.upstreams = new Map([...config.upstreams].map(([name, u]) => [name, createUpstream(u, { observer: upstreamObserver })]));
    this.blobStore = new FsBlobStore({ root: config.storage.path });
    this.metadata = new KeyvMetadataStore(new FileKvStore({ root: config.storage.path }));
    const mirror = (this.mirror = new Mirror({
      upstreams: this.upstreams,
      store: this.blobStore,
      metadata: this.metadata,
      observer: metrics,
      logger: this.logger,
      manifestTTLms: config.manifestTTLms,
      ...(options.now ? { now: options.now } : {}),
    }));
    this.sync = new SyncService({
      config: config.sync,
      mirror,
      observer: metrics,
      logger: this.logger,
      ledger,
      ...(options.syncTimers ? { timers: options.syncTimers } : {}),
    });
    this.readiness = new Readiness([
      // The blob store's temp directory (FsBlobStore layout): every download starts with a file there.
      storageWritable(path.join(config.storage.path, 'v1', 'tmp')),
      { name: 'metadata', run: async () => void (await this.metadata.getBlob(METADATA_PROBE)) },
    ]);
    const upstreamList = [...config.upstreams.values()].map((u) => ({ name: u.name, url: u.url.href }));
    const ops: OpsEndpoints = {
      readiness: this.readiness,
      metrics: () => metrics.exposition(),
      status: () => statusSnapshot(metrics, { upstreams: upstreamList, ...(options.version ? { version: options.version } : {}) }),
    };
    // With a metrics listener, the registry port keeps only the probes (it may be public).
    const mainOps = config.metrics.listen === undefined ? ops : { readiness: this.readiness };
    this.server = createHttpServer({ mirror, routes: routeContext(config), logger: this.logger, ops: mainOps, observer: metrics });
    this.opsServer = config.metrics.listen === undefined ? undefined : createOpsServer({ ops, logger: this.logger, observer: metrics });
  }

  /** Storage only, no listener: what `regmirror sync` needs. start() calls it. */
  async open(): Promise<{ removedTempFiles: number }> {
    const recovered = await this.blobStore.recover();
    await this.metadata.open();
    return recovered;
  }

  async start(): Promise<AddressInfo> {
    const { removedTempFiles } = await this.open();
    const address = await listen(this.server, this.config.listen);
    const metricsAddress = this.opsServer && this.config.metrics.listen ? await listen(this.opsServer, this.config.metrics.listen) : undefined;
    this.logger.info(
      {
        address: `${address.address}:${address.port}`,
        ...(metricsAddress ? { metricsAddress: `${metricsAddress.address}:${metricsAddress.port}` } : {}),
        config: redactedConfig(this.config),
        removedTempFiles,
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
      await this.metadata.close();
      this.logger.flush();
    })();
    return this.closing;
  }
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
  return {
    ...config,
    upstreams: Object.fromEntries(
      [...config.upstreams].map(([name, u]) => [name, { ...u, url: u.url.href, password: u.password === undefined ? undefined : '[redacted]' }]),
    ),
  };
}
