import type { UpstreamConfig } from '../config/index.js';
import { onlineUpstream } from './endpoints.js';
import { HttpUpstream, type HttpUpstreamDeps } from './http-upstream.js';
import { OfflineUpstream } from './offline-upstream.js';
import type { Upstream } from './types.js';
import type { ProbeReport } from './probe.js';

export type { BlobResponse, ManifestHead, ManifestResponse, TagsPage, Upstream, UpstreamObserver } from './types.js';
export { failureCause, failureLine, UpstreamError, type CredentialProblem, type UpstreamFailure } from './errors.js';
export { HttpUpstream, type HttpUpstreamDeps } from './http-upstream.js';
export { FallbackUpstream, type EndpointReport } from './endpoints.js';
export { OfflineUpstream } from './offline-upstream.js';
export { proxyFor } from './dispatchers.js';
export type { CredentialCheck, ProbeReport } from './probe.js';

/** Builds the client for one configured registry; does no I/O until the first request (an offline one, none ever). */
export function createUpstream(config: UpstreamConfig, deps: HttpUpstreamDeps): Upstream {
  const { url } = config;
  if (config.offline || url === undefined) return new OfflineUpstream(config.name);
  return onlineUpstream({ ...config, url, offline: false }, deps);
}

/** Probes one configured registry (`regmirror doctor`); undefined for an offline one, which is never contacted. */
export async function probeUpstream(config: UpstreamConfig, deps: HttpUpstreamDeps): Promise<ProbeReport | undefined> {
  const { url } = config;
  if (config.offline || url === undefined) return undefined;
  const upstream = new HttpUpstream({ ...config, url, offline: false }, deps);
  try {
    return await upstream.probe();
  } finally {
    await upstream.close();
  }
}
