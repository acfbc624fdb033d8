import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Agent, Pool, ProxyAgent, type buildConnector, type Dispatcher } from 'undici';
import type { OnlineUpstreamConfig, UpstreamProxy } from '../config/index.js';
import { DirectGets, type DirectGetSettings } from './direct-get.js';

/** Which connection pool a request goes through, and the proxy it leaves by (for messages, no credentials). */
export interface Route {
  readonly dispatcher: Dispatcher;
  /** `http://proxy.example:3128`: the proxy's origin without its user information; undefined when direct. */
  readonly proxy: string | undefined;
  /** Blob GETs straight into slabs (direct-get.ts): only where no proxy is in the way. */
  readonly direct: DirectGets | undefined;
}

/**
 * A request that failed in a way the mirror's network settings may explain: on its way through a
 * proxy (whose name then travels to the message the client reads), or on an https connection the
 * server closed before a single byte came back, which is how a TLS 1.3 server that wants a client
 * certificate looks from here. The low-level error stays the `cause`, so its code still decides retries.
 */
export class RouteFailure extends Error {
  override readonly name = 'RouteFailure';
  constructor(
    readonly proxy: string | undefined,
    readonly closedUnanswered: boolean,
    cause: unknown,
  ) {
    super(proxy === undefined ? 'closed before answering' : `through proxy ${proxy}`, { cause });
  }
}

/** `err` as it should reach the error mapping: wrapped when a proxy or a missing client certificate may be why. */
export function routeFailure(err: unknown, route: Route, url: URL, hasClientCert: boolean): unknown {
  const socket = (err as { code?: unknown; socket?: { bytesRead?: unknown } }).code === 'UND_ERR_SOCKET' ? (err as { socket?: { bytesRead?: unknown } }).socket : undefined;
  const closedUnanswered = url.protocol === 'https:' && !hasClientCert && socket?.bytesRead === 0;
  return route.proxy === undefined && !closedUnanswered ? err : new RouteFailure(route.proxy, closedUnanswered, err);
}

/**
 * The undici dispatchers of one upstream's pool family (its registry, or the storage hosts its
 * redirects lead to): one direct agent, and one proxy agent per proxy URL, made when first needed.
 * Every one carries the upstream's TLS settings and timeouts; a proxy agent tunnels https targets
 * with CONNECT and sends http ones in absolute form, as curl does.
 */
export class Dispatchers {
  private readonly direct: Agent;
  private readonly directGets: DirectGets;
  private readonly viaProxy = new Map<string, ProxyAgent>();
  private readonly bypass: (url: URL) => boolean;
  private readonly pool: { connections: number; headersTimeout: number; bodyTimeout: number };
  private readonly tls: buildConnector.BuildOptions;

  constructor(private readonly config: OnlineUpstreamConfig) {
    const { timeouts, tls } = config;
    this.pool = { connections: config.connections, headersTimeout: timeouts.headersMs, bodyTimeout: timeouts.bodyIdleMs };
    const secure: DirectGetSettings['tls'] = {
      // Added to the roots, not instead of them: a private registry's redirect may still lead to a public host.
      ...(tls.ca === undefined ? {} : { ca: [...rootCertificates, tls.ca.pem] }),
      ...(tls.client === undefined ? {} : { cert: tls.client.cert.pem, key: tls.client.key.pem }),
      ...(tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
    };
    this.tls = { timeout: timeouts.connectMs, ...secure };
    this.direct = new Agent({ ...this.pool, connect: this.tls });
    const { connectMs, headersMs, bodyIdleMs } = timeouts;
    this.directGets = new DirectGets({ tls: secure, connectMs, headersMs, bodyIdleMs, connections: config.connections });
    this.bypass = noProxyMatcher(config.proxy.noProxy);
  }

  route(url: URL): Route {
    const proxy = proxyFor(this.config.proxy, url, this.bypass);
    if (proxy === undefined) return { dispatcher: this.direct, proxy: undefined, direct: this.directGets };
    let agent = this.viaProxy.get(proxy.href);
    if (agent === undefined) {
      const { pool } = this;
      agent = new ProxyAgent({
        uri: proxy.href,
        proxyTunnel: false,
        ...pool,
        requestTls: this.tls,
        proxyTls: { timeout: this.tls.timeout },
        // Also makes the client to the proxy itself for absolute-form requests, which would otherwise get undici's defaults.
        factory: (origin, options) => new Pool(origin, { ...pool, ...options }),
      });
      this.viaProxy.set(proxy.href, agent);
    }
    return { dispatcher: agent, proxy: proxy.origin, direct: undefined };
  }

  /** Aborts whatever is in flight and closes every pooled connection. */
  async destroy(): Promise<void> {
    this.directGets.destroy();
    await Promise.all([this.direct, ...this.viaProxy.values()].map((d) => d.destroy()));
  }
}

/** The proxy a request to `url` goes through, or undefined when it goes direct. */
export function proxyFor(proxy: UpstreamProxy, url: URL, bypass: (url: URL) => boolean = noProxyMatcher(proxy.noProxy)): URL | undefined {
  const chosen = url.protocol === 'https:' ? proxy.https : proxy.http;
  return chosen === undefined || bypass(url) ? undefined : chosen;
}

/**
 * NO_PROXY as curl and Go read it: `*` is every host; `example.com` is that host and its subdomains,
 * `.example.com` (or `*.example.com`) its subdomains; `host:port` only that port; an address or a
 * CIDR range (`10.0.0.0/8`) matches literal addresses in it.
 */
export function noProxyMatcher(entries: readonly string[]): (url: URL) => boolean {
  if (entries.includes('*')) return () => true;
  const ranges = new BlockList();
  const names: { name: string; port: string | undefined; subdomainsOnly: boolean }[] = [];
  for (const entry of entries) {
    const cidr = /^([0-9a-f:.]+)\/(\d{1,3})$/.exec(entry);
    const family = cidr?.[1] === undefined ? 0 : isIP(cidr[1]);
    if (cidr?.[1] !== undefined && family !== 0) {
      try {
        ranges.addSubnet(cidr[1], Number(cidr[2]), family === 6 ? 'ipv6' : 'ipv4');
      } catch {
        // A prefix longer than the address: an entry that matches nothing, as in curl.
      }
      continue;
    }
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^([^:]+):(\d+)$/.exec(entry);
    const host = m?.[1] ?? entry;
    names.push({ name: host.replace(/^\*?\./, ''), port: m?.[2], subdomainsOnly: /^\*?\./.test(host) });
  }
  return (url) => {
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
    const family = isIP(host);
    if (family !== 0 && ranges.check(host, family === 6 ? 'ipv6' : 'ipv4')) return true;
    return names.some(({ name, port: p, subdomainsOnly }) => (p === undefined || p === port) && (host.endsWith(`.${name}`) || (!subdomainsOnly && host === name)));
  };
}
