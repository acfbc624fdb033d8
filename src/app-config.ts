import type { Server } from 'node:net';
import { redactedCluster } from './cluster-node.js';
export { ClusterNode } from './cluster-node.js';
import { formatBytes, redactedUrl, redactRedisUrl, type Config, type RepositoryPattern, type UpstreamConfig } from './config/index.js';
import { PinSet } from './mirror/index.js';
import type { RouteContext } from './oci/index.js';
import { UpstreamAuthWatch, type Logger, type Metrics, type RegistryEndpoint } from './observability/index.js';
import { syncPinPatterns, type RateLimitLedger } from './sync/index.js';
import { createUpstream, type EndpointReport, type Upstream } from './upstream/index.js';
import { networkFields, warnIfInsecure } from './upstream-network.js';

export { upstreamStatusInfo } from './upstream-network.js';

/** What the composition root derives from the Config, beside building parts: names, pins, log views. */

/** `storage.pin` and the repositories sync keeps: what eviction and `cache gc` leave alone. */
export function configuredPins(config: Config): PinSet {
  return new PinSet(config.storage.pin).with(syncPinPatterns(config.sync));
}

/**
 * A temp file untouched for longer than any upstream may stay silent (bodyIdle, after which the
 * download is aborted and its file removed) belongs to no download: `cache gc` may remove it.
 */
export function adminTempGraceMs(config: Config): number {
  const idle = Math.max(0, ...[...config.upstreams.values()].map((u) => u.timeouts.bodyIdleMs));
  return Math.max(15 * 60_000, 2 * idle);
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

/**
 * The effective config for the start-up log line, under the config file's own key names (so an
 * operator can compare it with the file), defaults filled in, every secret replaced.
 */
export function redactedConfig(config: Config): unknown {
  const { storage, metrics, tls } = config;
  const { metadata } = storage;
  return {
    listen: hostPortOf(config.listen),
    storage: {
      path: storage.path,
      maxSize: sizeOf(storage.maxSize),
      minFree: storage.minFree.kind === 'percent' ? `${storage.minFree.percent}%` : sizeOf(storage.minFree.bytes),
      pin: storage.pin.map(patternOf),
      hashThread: storage.hashThread,
      ...(metadata.kind === 'redis' ? { metadata: redactRedisUrl(metadata.url), metadataNamespace: metadata.namespace } : {}),
    },
    upstreams: Object.fromEntries(
      [...config.upstreams].map(([name, u]) => [
        name,
        {
          url: u.url === undefined ? undefined : redactedUrl(u.url),
          ...(u.endpoints !== undefined && u.endpoints.length > 1 ? { endpoints: u.endpoints.map(redactedUrl), endpointCooldown: durationOf(u.endpointCooldownMs ?? 0) } : {}),
          offline: u.offline,
          username: u.username,
          // No key at all for an anonymous upstream: '[redacted]' for an absent password reads as if one were set.
          ...(u.password === undefined ? {} : { password: '[redacted]' }),
          library: u.officialLibrary,
          aliases: u.aliases,
          timeouts: { connect: durationOf(u.timeouts.connectMs), headers: durationOf(u.timeouts.headersMs), bodyIdle: durationOf(u.timeouts.bodyIdleMs) },
          connections: u.connections,
          ...networkFields(u),
          notFoundTTL: durationOf(u.notFoundTTLms),
        },
      ]),
    ),
    defaultUpstream: config.defaultUpstream,
    manifestTTL: durationOf(config.manifestTTLms),
    log: config.log,
    metrics: { listen: metrics.listen === undefined ? undefined : hostPortOf(metrics.listen), perRepository: metrics.perRepository },
    shutdownGrace: durationOf(config.shutdownGraceMs),
    sync: fileShaped(config.sync),
    tls: tls === undefined ? undefined : { ...tls, listen: tls.listen === undefined ? undefined : hostPortOf(tls.listen) },
    auth: fileShaped(config.auth),
    // Without auth the read policy is "everyone everything", and only trustedProxies may be set.
    access: config.auth === undefined ? { trustedProxies: config.access.trustedProxies } : fileShaped(config.access),
    audit: config.audit === undefined ? undefined : { ...config.audit, maxSize: sizeOf(config.audit.maxSize) },
    ...(config.cluster === undefined ? {} : { cluster: redactedCluster(config.cluster) }),
  };
}

/** The tag TTL, and each upstream's notFoundTTL: how long the mirror trusts what upstreams said. */
export function mirrorTTLs(config: Config): { manifestTTLms: number; notFoundTTLms: (upstream: string) => number } {
  return { manifestTTLms: config.manifestTTLms, notFoundTTLms: (upstream) => config.upstreams.get(upstream)?.notFoundTTLms ?? 0 };
}

/** Builds an upstream's client; sync reads the rate-limit budget from the same hook that feeds the gauge. */
export function upstreamFactory(metrics: Metrics, ledger: RateLimitLedger, now: () => number, logger: Logger): (config: UpstreamConfig) => Upstream {
  const auth = new UpstreamAuthWatch(metrics, logger);
  const observer = {
    authFailed: auth.authFailed.bind(auth),
    authSucceeded: auth.authSucceeded.bind(auth),
    upstreamRequest: (e: Parameters<Metrics['upstreamRequest']>[0]) => metrics.upstreamRequest(e),
    upstreamFailed: (upstream: string, cause: Parameters<Metrics['upstreamFailed']>[1]) => metrics.upstreamFailed(upstream, cause),
    endpointState: (report: EndpointReport) => {
      metrics.endpointState(report);
      logEndpoint(logger, report);
    },
    rateLimitRemaining: (upstream: string, remaining: number) => {
      metrics.rateLimitRemaining(upstream, remaining);
      ledger.rateLimitRemaining(upstream, remaining);
    },
  };
  return (u) => {
    warnIfInsecure(u, logger);
    return createUpstream(u, { observer, now });
  };
}

/**
 * One line when an endpoint starts cooling off and one when it answers again: it is not asked while
 * cooling, so this is at most one line per endpoint and cooldown.
 */
function logEndpoint(logger: Logger, { upstream, endpoint, coolingUntil, lastError }: EndpointReport): void {
  if (lastError === undefined) return;
  if (coolingUntil === undefined) logger.info({ upstream, endpoint }, 'upstream endpoint answers again');
  else logger.warn({ upstream, endpoint, cause: lastError.cause, until: new Date(coolingUntil).toISOString() }, 'upstream endpoint failed; cooling off while the next one serves');
}

function hostPortOf({ host, port }: { host: string; port: number }): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function sizeOf(bytes: number): string {
  return formatBytes(bytes).replace(' ', '');
}

/** 30000 → "30s": the largest unit that divides it, as the file would say it. */
function durationOf(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function patternOf(p: RepositoryPattern): string {
  return `${p.upstream}/${p.repository}`;
}

const SECRET_KEYS = /^(password|token|secret|credentials?)$/i;

/**
 * The sections read into richer types (sync, auth, access), back in the file's shape: `…Ms` numbers
 * as durations under the key without the suffix, maps as objects, patterns as `upstream/repository`,
 * expressions as their source; anything named like a secret replaced.
 */
function fileShaped(value: unknown): unknown {
  if (value instanceof Map) return fileShaped(Object.fromEntries(value));
  if (value instanceof RegExp) return value.source;
  if (value instanceof URL) return redactedUrl(value);
  if (Array.isArray(value)) return value.map(fileShaped);
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 2 && keys.includes('upstream') && keys.includes('repository')) return patternOf(value as RepositoryPattern);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const duration = /^(.+?)(Ms|ms)$/.exec(k);
    if (SECRET_KEYS.test(k) && v !== undefined) out[k] = '[redacted]';
    else if (duration !== null && typeof v === 'number') out[duration[1]!] = durationOf(v);
    else out[k] = fileShaped(v);
  }
  return out;
}

/** Where nodes pull from (HTTPS when the mirror serves it): the status page's node snippets. */
export function registryEndpoint(config: Config, server: Server): RegistryEndpoint | undefined {
  const address = server.address();
  if (address === null || typeof address === 'string') return undefined;
  const host = config.tls?.listen?.host ?? config.listen.host;
  const wildcard = host === '' || host === '0.0.0.0' || host === '::';
  return { scheme: config.tls === undefined ? 'http' : 'https', host: wildcard ? null : host, port: address.port, defaultUpstream: config.defaultUpstream };
}
