import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterConfig, Config } from './config/index.js';
import { Membership, PeerClient, PeerManifests, PeerRouting, type ClusterObserver } from './cluster/index.js';
import { PeerEndpoint } from './http/index.js';
import type { BlobRouting, ManifestRouting, Mirror } from './mirror/index.js';
import { errorSummary, type Logger } from './observability/index.js';

interface ClusterDeps {
  readonly observer: ClusterObserver;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly https: boolean;
}

/**
 * `cluster`, composed: the member list and its probes, the routing the mirror fetches missing blobs
 * and manifests through, and the internal endpoint peers fetch from. Built with the App (no I/O); start() needs
 * the bound address, since this replica's own URL may be derived from it.
 */
export class ClusterNode {
  readonly membership: Membership;
  readonly routing: BlobRouting & ManifestRouting;
  readonly #client: PeerClient;

  private constructor(
    private readonly config: ClusterConfig,
    private readonly deps: ClusterDeps,
  ) {
    const { logger, now } = deps;
    // A probe gets at most a second, or the interval if shorter: a hung peer must not hold the round.
    this.#client = new PeerClient({ secret: config.secret, self: () => this.membership.self, probeTimeoutMs: Math.min(1000, config.probeIntervalMs), now, ca: config.ca?.pem });
    this.membership = new Membership({
      self: config.self,
      peers: config.peers,
      dns: config.dns,
      probe: (url) => this.#client.ready(url),
      intervalMs: config.probeIntervalMs,
      now,
      log: (fields, message) => logger.info(fields, message),
    });
    const log = (level: 'warn' | 'info', fields: Record<string, unknown>, message: string) => logger[level](fields, message);
    const blobs = new PeerRouting({ membership: this.membership, client: this.#client, observer: deps.observer, log, now });
    const manifests = new PeerManifests({ membership: this.membership, client: this.#client, observer: deps.observer, log });
    this.routing = {
      route: (ref, digest, upstream) => blobs.route(ref, digest, upstream),
      head: (ref, digest, upstream) => blobs.head(ref, digest, upstream),
      clustered: () => manifests.clustered(),
      routeManifest: (ref, digest) => manifests.routeManifest(ref, digest),
    };
  }

  static from(config: Config, deps: Omit<ClusterDeps, 'https'>): ClusterNode | undefined {
    // The registry listener speaks HTTPS unless `tls.listen` moved HTTPS to a listener of its own.
    return config.cluster === undefined ? undefined : new ClusterNode(config.cluster, { ...deps, https: config.tls !== undefined && config.tls.listen === undefined });
  }

  /** Starts with the registry listener (its bound port may make this replica's URL) and stops with it. */
  attach(server: Server): void {
    server.once('listening', () => this.start(server.address() as AddressInfo));
    server.once('close', () => void this.close());
  }

  endpoint(mirror: Mirror, upstreams: Iterable<string>): PeerEndpoint {
    return new PeerEndpoint({ secret: this.config.secret, blobs: mirror, manifests: mirror, upstreams: new Set(upstreams), observer: this.deps.observer, now: this.deps.now });
  }

  /** Once listening: `self` from POD_IP and the bound port unless configured, then the first probe round. */
  start(address: AddressInfo): void {
    const { podIp } = this.config;
    if (this.membership.self === undefined && podIp !== undefined) {
      this.membership.setSelf(`${this.deps.https ? 'https' : 'http'}://${podIp.includes(':') ? `[${podIp}]` : podIp}:${address.port}`);
    }
    this.deps.logger.info({ self: this.membership.self, peers: this.config.peers, dns: this.config.dns }, 'cluster: this replica takes part');
    this.membership.start();
  }

  async close(): Promise<void> {
    this.membership.close();
    await this.#client.close().catch((err: unknown) => this.deps.logger.warn({ error: errorSummary(err) }, 'closing the peer client failed'));
  }
}

/** What the start-up line shows of `cluster`: never the secret. */
export function redactedCluster(cluster: ClusterConfig): unknown {
  const { peers, dns, self, podIp, probeIntervalMs, ca } = cluster;
  return { peers, dns: dns && `${dns.host}:${dns.port}`, self, podIp, secret: '[redacted]', probeIntervalMs, ...(ca ? { ca: ca.file } : {}) };
}
