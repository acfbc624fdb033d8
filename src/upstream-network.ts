import { redactedUrl, type Config, type UpstreamConfig } from './config/index.js';
import type { Logger, StatusUpstreamInfo } from './observability/index.js';
import { proxyFor } from './upstream/index.js';

/** How the upstreams are reached (proxies, TLS trust), as the start-up log, its warnings and /api/status show it. */

/** The proxy an upstream's own requests go through (NO_PROXY applied), credentials redacted; null when direct. */
function proxyShown(u: UpstreamConfig): string | null {
  const proxy = u.url === undefined ? undefined : proxyFor(u.proxy, u.url);
  return proxy === undefined ? null : redactedUrl(proxy);
}

export function upstreamStatusInfo(config: Config): StatusUpstreamInfo[] {
  return [...config.upstreams.values()].map((u) => ({
    name: u.name,
    url: u.url?.href ?? null,
    offline: u.offline,
    proxy: proxyShown(u),
    insecureSkipVerify: u.tls.insecureSkipVerify,
  }));
}

/** The network keys of one upstream for the start-up log, under the file's names; key files by path only. */
export function networkFields(u: UpstreamConfig): Record<string, unknown> {
  const { proxy, tls } = u;
  return {
    proxy: proxy.source === 'none' ? 'none' : proxy.source === 'config' ? proxyShown(u) : { fromEnvironment: proxyShown(u), noProxy: proxy.noProxy },
    ...(tls.ca === undefined ? {} : { ca: tls.ca.file }),
    ...(tls.client === undefined ? {} : { clientCert: tls.client.cert.file, clientKey: tls.client.key.file }),
    insecureSkipVerify: tls.insecureSkipVerify,
  };
}

/** An unchecked certificate lets anyone on the path answer for the registry: said as a warning whenever its client is built. */
export function warnIfInsecure(u: UpstreamConfig, logger: Logger): void {
  if (u.offline || !u.tls.insecureSkipVerify) return;
  logger.warn(
    { upstream: u.name, key: `upstreams.${u.name}.insecureSkipVerify` },
    `TLS certificates of upstream ${u.name} are NOT verified (insecureSkipVerify): anyone on the network path can answer for it; digests are still checked, tags are not`,
  );
}
