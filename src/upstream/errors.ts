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
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}
