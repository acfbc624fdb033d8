/**
 * Why an upstream call failed. `not-found` also covers Docker Hub's 401 for repositories
 * that do not exist (after one fresh-token retry).
 */
export type UpstreamFailure =
  | 'not-found'
  | 'unauthorized'
  | 'denied'
  | 'rate-limited'
  | 'unavailable'
  | 'bad-response';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly upstream: string,
    readonly failure: UpstreamFailure,
    message: string,
    readonly details: {
      /** HTTP status upstream answered, if it answered. */
      readonly status?: number;
      /** Seconds, from upstream's Retry-After. */
      readonly retryAfter?: number;
      /** The OCI error code upstream put in its body, if any (e.g. MANIFEST_UNKNOWN). */
      readonly ociCode?: string;
      /**
       * What went wrong in words a client may read, as a verb phrase after the upstream's name
       * ("answered 500", "is unreachable (ECONNREFUSED)"): no URL, no address. The message, which
       * names the request, is for the mirror's own log.
       */
      readonly reason?: string;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}
