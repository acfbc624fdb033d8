import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DestinationStream } from 'pino';
import type { Config } from './config/index.js';
import { createHttpServer } from './http/index.js';
import { Mirror, noopObserver } from './mirror/index.js';
import { createLogger, errorSummary, type Logger } from './observability/index.js';
import type { RouteContext } from './oci/index.js';
import { FileKvStore, FsBlobStore, KeyvMetadataStore, type MetadataStore } from './storage/index.js';
import { createUpstream, type Upstream, type UpstreamObserver } from './upstream/index.js';

export interface AppOptions {
  /** Where JSON log lines go (default: stdout). Tests pass a stream to read them. */
  readonly logDestination?: DestinationStream;
  readonly now?: () => number;
}

const noopUpstreamObserver: UpstreamObserver = { upstreamRequest() {}, rateLimitRemaining() {} };

/**
 * The composition root: builds every part from the Config. Constructors do no I/O, so an App can be
 * built offline; start() recovers storage, opens metadata and listens; close() undoes it, twice safely.
 */
export class App {
  readonly logger: Logger;
  private readonly upstreams: ReadonlyMap<string, Upstream>;
  private readonly metadata: MetadataStore;
  private readonly blobStore: FsBlobStore;
  private readonly server: Server;
  private readonly mirror: Mirror;
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: Config,
    options: AppOptions = {},
  ) {
    this.logger = createLogger(config.log.level, options.logDestination);
    this.upstreams = new Map([...config.upstreams].map(([name, u]) => [name, createUpstream(u, { observer: noopUpstreamObserver })]));
    this.blobStore = new FsBlobStore({ root: config.storage.path });
    this.metadata = new KeyvMetadataStore(new FileKvStore({ root: config.storage.path }));
    const mirror = (this.mirror = new Mirror({
      upstreams: this.upstreams,
      store: this.blobStore,
      metadata: this.metadata,
      observer: noopObserver,
      logger: this.logger,
      manifestTTLms: config.manifestTTLms,
      ...(options.now ? { now: options.now } : {}),
    }));
    this.server = createHttpServer({ mirror, routes: routeContext(config), logger: this.logger });
  }

  async start(): Promise<AddressInfo> {
    const { removedTempFiles } = await this.blobStore.recover();
    await this.metadata.open();
    const { host, port } = this.config.listen;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.logger.info({ address: `${address.address}:${address.port}`, config: redactedConfig(this.config), removedTempFiles }, 'regmirror listening');
    return address;
  }

  /** Resolves when no blob download is in flight (used by shutdown, and by tests to wait for a commit). */
  settled(): Promise<void> {
    return this.mirror.settled();
  }

  /** Stops accepting, gives in-flight transfers `graceMs` to finish, then closes everything. */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      // A download whose clients all left may finish and land in the cache before the stores close,
      // within the same grace; closing the upstreams then aborts whatever is still running.
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([this.settled(), deadline]);
      await Promise.all([...this.upstreams.values()].map((u) => u.close().catch((err: unknown) => this.logger.warn({ error: errorSummary(err) }, 'closing upstream failed'))));
      await this.metadata.close();
      this.logger.flush();
    })();
    return this.closing;
  }
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
