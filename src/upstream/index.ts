import type { UpstreamConfig } from '../config/index.js';
import { HttpUpstream, type HttpUpstreamDeps } from './http-upstream.js';
import type { Upstream } from './types.js';

export type { BlobResponse, ManifestHead, ManifestResponse, TagsPage, Upstream, UpstreamObserver } from './types.js';
export { UpstreamError, type UpstreamFailure } from './errors.js';
export { HttpUpstream, type HttpUpstreamDeps } from './http-upstream.js';

/** Builds the client for one configured registry; does no I/O until the first request. */
export function createUpstream(config: UpstreamConfig, deps: HttpUpstreamDeps): Upstream {
  return new HttpUpstream(config, deps);
}
