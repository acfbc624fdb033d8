import { OciError, type OciErrorCode } from '../oci/index.js';
import { AccessChallenge, AccessDenied } from '../access/index.js';
import { DigestMismatchError, MetadataUnavailableError, SizeMismatchError, StorageError } from '../storage/index.js';
import { UpstreamError, type UpstreamFailure } from '../upstream/index.js';

export interface ErrorAnswer {
  readonly status: number;
  readonly code: OciErrorCode;
  readonly message: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Unknown errors are logged with their stack once; known ones are ordinary answers. */
  readonly unexpected: boolean;
}

/** Which "not found" the request can produce, so a 404 from upstream becomes the right OCI code. */
export type NotFoundKind = 'manifest' | 'blob' | 'tags' | 'other';

/** What the request asked for, so a "not found" can name it (the same fields the access log has). */
export interface RequestTarget {
  readonly repository?: string;
  /** A tag or a digest. */
  readonly reference?: string;
}

/** The one mapping from anything thrown to an OCI error answer. */
export function toErrorAnswer(err: unknown, notFound: NotFoundKind, target: RequestTarget = {}): ErrorAnswer {
  if (err instanceof OciError) {
    return { status: err.status, code: err.code, message: err.message, headers: err.headers, unexpected: false };
  }
  if (err instanceof UpstreamError) return fromUpstream(err, notFound, target);
  if (err instanceof AccessChallenge) {
    // The mirror's own challenge: the client logs in to the mirror and retries.
    return { status: 401, code: 'UNAUTHORIZED', message: err.message, headers: { 'www-authenticate': err.challenge }, unexpected: false };
  }
  if (err instanceof AccessDenied) return { status: 403, code: 'DENIED', message: err.message, headers: {}, unexpected: false };
  if (err instanceof MetadataUnavailableError) {
    // Not a bug here: the shared metadata store is down. Retry-able, and readiness already says so.
    return { status: 503, code: 'UNAVAILABLE', message: 'the metadata store is unreachable; retry later', headers: { 'retry-after': '10' }, unexpected: false };
  }
  if (err instanceof DigestMismatchError || err instanceof SizeMismatchError) {
    // Only fetched bytes are checked on the request path: the upstream sent something else.
    return { status: 502, code: 'UNAVAILABLE', message: 'the upstream sent content that does not match its digest or size; nothing was cached', headers: {}, unexpected: false };
  }
  if (err instanceof StorageError) {
    return { status: 500, code: 'UNKNOWN', message: 'internal storage error', headers: {}, unexpected: true };
  }
  return { status: 500, code: 'UNKNOWN', message: 'internal error', headers: {}, unexpected: true };
}

const NOT_FOUND_CODE: Readonly<Record<NotFoundKind, OciErrorCode>> = {
  manifest: 'MANIFEST_UNKNOWN',
  blob: 'BLOB_UNKNOWN',
  tags: 'NAME_UNKNOWN',
  other: 'NAME_UNKNOWN',
};

const PASSED_THROUGH_NOT_FOUND: ReadonlySet<string> = new Set(['MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN']);

function fromUpstream(err: UpstreamError, notFound: NotFoundKind, target: RequestTarget): ErrorAnswer {
  const failure: UpstreamFailure = err.failure;
  const answer = (status: number, code: OciErrorCode, message: string, headers: Record<string, string> = {}): ErrorAnswer => ({
    status,
    code,
    message,
    headers,
    unexpected: false,
  });
  switch (failure) {
    case 'not-found': {
      const code = err.details.ociCode !== undefined && PASSED_THROUGH_NOT_FOUND.has(err.details.ociCode) ? (err.details.ociCode as OciErrorCode) : NOT_FOUND_CODE[notFound];
      return answer(404, code, notFoundMessage(err.upstream, notFound, target));
    }
    case 'unauthorized':
      return unauthorized(err, answer);
    case 'denied':
      return answer(403, 'DENIED', `upstream ${err.upstream} denied access`);
    case 'rate-limited':
      return answer(429, 'TOOMANYREQUESTS', `upstream ${err.upstream} is rate limiting the mirror`, { 'retry-after': String(err.details.retryAfter ?? 60) });
    // Never err.message: it names the request's URL, and the upstream's address is the mirror's business.
    case 'unavailable':
      // The mirror's proxy or TLS settings: a gateway fault for the operator, and no point retrying in 10 s.
      if (err.details.setup !== undefined) return answer(502, 'UNAVAILABLE', `upstream ${err.upstream} ${err.details.reason ?? 'is unavailable'}`);
      return answer(503, 'UNAVAILABLE', `upstream ${err.upstream} ${err.details.reason ?? 'is unavailable'}, and this content is not cached`, { 'retry-after': '10' });
    case 'bad-response':
      return answer(502, 'UNAVAILABLE', `upstream ${err.upstream} sent an invalid response${err.details.reason ? `: ${err.details.reason}` : ''}`);
    default: {
      const unmapped: never = failure;
      throw new Error(`unmapped upstream failure ${String(unmapped)}`);
    }
  }
}

/**
 * The mirror's own credentials are at fault, not the client's: a 401 would make clients ask their user
 * for a password the mirror never needed, so a gateway error points at the operator, and says whether
 * the credentials were refused or never sent. Without any configured, the upstream refused anonymous
 * access: DENIED, as a registry answers a pull it will not serve.
 */
function unauthorized(err: UpstreamError, answer: (status: number, code: OciErrorCode, message: string) => ErrorAnswer): ErrorAnswer {
  const up = err.upstream;
  switch (err.details.credentials) {
    case 'rejected':
      return answer(502, 'UNAVAILABLE', `the mirror's credentials for ${up} were rejected (check upstreams.${up} username and password)`);
    case 'withheld':
      return answer(502, 'UNAVAILABLE', `the mirror's credentials for ${up} were withheld from a token realm outside the upstream's domain (or not https), which refused the mirror without them`);
    case 'none':
      return answer(403, 'DENIED', `upstream ${up} refused anonymous access, and the mirror has no credentials for it (upstreams.${up} username and password)`);
    case undefined:
      return answer(502, 'UNAVAILABLE', `upstream ${up} asked for a login the mirror cannot answer (no usable WWW-Authenticate challenge)`);
  }
}

/** "manifest unknown: upstream docker.io has no library/alpine:nope", so a typo shows in the client's own error. */
function notFoundMessage(upstream: string, kind: NotFoundKind, { repository, reference }: RequestTarget): string {
  const what = kind === 'other' ? 'not found' : `${kind} unknown`;
  if (repository === undefined) return `${upstream}: ${what}`;
  const named = reference === undefined ? repository : kind === 'blob' ? `${reference} in ${repository}` : `${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
  return `${what}: upstream ${upstream} has no ${named}`;
}
