/**
 * OCI distribution error codes (registry-protocol.md §1.10): the spec's list plus the
 * extra codes distribution uses that a pull mirror can meet.
 */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNKNOWN'
  | 'UNAVAILABLE'
  | 'RANGE_INVALID'
  | 'TAG_INVALID'
  | 'PAGINATION_NUMBER_INVALID';

/** HTTP status per code, as distribution's `registry/api/errcode/register.go` assigns them. */
export const OCI_ERROR_STATUS: Readonly<Record<OciErrorCode, number>> = Object.freeze({
  BLOB_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
  RANGE_INVALID: 416,
  TAG_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
});

export interface OciErrorOptions {
  /** Overrides the table status, e.g. UNSUPPORTED answered as 404 for a path we do not serve. */
  readonly status?: number;
  readonly detail?: unknown;
  /** Extra response headers (lower-case names), e.g. `allow` on 405, `content-range` on 416. */
  readonly headers?: Record<string, string>;
  readonly cause?: unknown;
}

/** A protocol error that http/ turns into a JSON error body with `status`. */
export class OciError extends Error {
  override readonly name = 'OciError';
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: OciErrorCode, message: string, options: OciErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? OCI_ERROR_STATUS[code];
    this.detail = options.detail;
    this.headers = Object.freeze({ ...options.headers });
  }
}

/** The spec's error body; `detail` is left out when undefined (it is optional). */
export function ociErrorBody(code: OciErrorCode, message: string, detail?: unknown): string {
  const error = detail === undefined ? { code, message } : { code, message, detail };
  return JSON.stringify({ errors: [error] });
}

/**
 * Client input echoed in an error message: JSON-quoted (control characters escaped) and cut
 * short, so a 100 kB path cannot turn into a 100 kB error body or log line.
 */
export function quoteInput(value: string, max = 80): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
