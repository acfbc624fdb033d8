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

/**
 * Why a request that needed a login failed: the mirror's credentials were sent and refused, they were
 * withheld from a token realm outside the upstream's trust boundary (realm-trust.ts), or none are
 * configured. The first two are the operator's to fix, and put the upstream in state `auth-failed`.
 */
export type CredentialProblem = 'rejected' | 'withheld' | 'none';

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
      /** The request's URL as describeUrl prints it (no query, no userinfo), for the operator's log. */
      readonly url?: string;
      /** The system error code when no answer came (ENOTFOUND, ECONNREFUSED, ETIMEDOUT, …). */
      readonly code?: string;
      /** The proxy the request went through (origin only, never its credentials). */
      readonly proxy?: string;
      /** The mirror's own network settings are at fault (a proxy, TLS trust or a client certificate), not a passing outage. */
      readonly setup?: 'proxy' | 'tls';
      /** Set on `unauthorized`: whose credentials failed, and how. */
      readonly credentials?: CredentialProblem;
      /** Answered from the mirror's memory of an earlier upstream answer (a remembered 404), not asked again. */
      readonly remembered?: boolean;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}

/**
 * One line for the operator: what failed and where, e.g. "ECONNREFUSED connecting to
 * http://127.0.0.1:9/v2/" or "HTTP 503 from GET https://r.example/v2/a/manifests/1". Never a secret:
 * the URL is already stripped of its query and userinfo.
 */
export function failureLine(err: UpstreamError): string {
  const { code, status, url, proxy } = err.details;
  if (code !== undefined && url !== undefined) return `${code} connecting to ${url}${proxy === undefined ? '' : ` through proxy ${proxy}`}`;
  if (status !== undefined && status >= 500 && url !== undefined) return `HTTP ${status} from ${url}`;
  return err.message;
}

/** What an operator calls the cause in a log field: the error code, else the HTTP status, else the failure kind. */
export function failureCause(err: UpstreamError): string {
  return err.details.code ?? (err.details.status !== undefined ? `HTTP ${err.details.status}` : err.failure);
}
