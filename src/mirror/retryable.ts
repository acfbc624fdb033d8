import { UpstreamError } from '../upstream/index.js';

/** A failed mirror call that may succeed if made again later. */
export interface Retryable {
  readonly upstream: string;
  readonly reason: 'rate-limited' | 'unavailable';
  /** From upstream's Retry-After, when it sent one. */
  readonly retryAfterSeconds: number | undefined;
}

/**
 * Whether a mirror call's failure is worth another try: upstream was rate-limiting or unavailable.
 * Not found, denied or a bad response stay final. Callers (sync) learn this here instead of
 * depending on the upstream client's error classes.
 */
export function retryable(error: unknown): Retryable | undefined {
  if (!(error instanceof UpstreamError)) return undefined;
  if (error.failure !== 'rate-limited' && error.failure !== 'unavailable') return undefined;
  // A host name that does not exist will not exist in a minute either: a typo in the config, not an outage.
  if (error.details.code === 'ENOTFOUND') return undefined;
  return { upstream: error.upstream, reason: error.failure, retryAfterSeconds: error.details.retryAfter };
}

/** Upstream answered that the repository or the reference does not exist (a 404), not that it failed. */
export function notFound(error: unknown): boolean {
  return error instanceof UpstreamError && error.failure === 'not-found';
}
