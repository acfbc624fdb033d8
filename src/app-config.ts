import type { Server } from 'node:net';
import { redactRedisUrl, type Config } from './config/index.js';
import { PinSet } from './mirror/index.js';
import type { RouteContext } from './oci/index.js';
import type { RegistryEndpoint } from './observability/index.js';
import { syncPinPatterns } from './sync/index.js';

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

/** Where nodes pull from (HTTPS when the mirror serves it): the status page's node snippets. */
export function registryEndpoint(config: Config, server: Server): RegistryEndpoint | undefined {
  const address = server.address();
  if (address === null || typeof address === 'string') return undefined;
  const host = config.tls?.listen?.host ?? config.listen.host;
  const wildcard = host === '' || host === '0.0.0.0' || host === '::';
  return { scheme: config.tls === undefined ? 'http' : 'https', host: wildcard ? null : host, port: address.port, defaultUpstream: config.defaultUpstream };
}
