import { redactRedisUrl, type Config } from './config/index.js';
import { PinSet } from './mirror/index.js';
import type { RouteContext } from './oci/index.js';
import type { Metrics } from './observability/index.js';
import { syncPinPatterns, type RateLimitLedger } from './sync/index.js';
import { createUpstream, type Upstream } from './upstream/index.js';

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
        { ...u, url: u.url?.href, ...(password === undefined ? {} : { password: '[redacted]' }) },
      ]),
    ),
  };
}

/** The configured upstreams; sync reads the rate-limit budget from the same hook that feeds the gauge. */
export function createUpstreams(config: Config, metrics: Metrics, ledger: RateLimitLedger, now: () => number): Map<string, Upstream> {
  const observer = {
    upstreamRequest: (e: Parameters<Metrics['upstreamRequest']>[0]) => metrics.upstreamRequest(e),
    upstreamFailed: (upstream: string, cause: Parameters<Metrics['upstreamFailed']>[1]) => metrics.upstreamFailed(upstream, cause),
    rateLimitRemaining: (upstream: string, remaining: number) => {
      metrics.rateLimitRemaining(upstream, remaining);
      ledger.rateLimitRemaining(upstream, remaining);
    },
  };
  return new Map([...config.upstreams].map(([name, u]) => [name, createUpstream(u, { observer, now })]));
}
