import type { Source } from '../mirror/index.js';
import type { AuditEvent } from './audit.js';
import type { TrustedProxies } from './client-address.js';

/** What an audit line says happened. */
export type AuditAction =
  | 'pull_manifest'
  | 'pull_blob'
  | 'list_tags'
  | 'referrers'
  | 'catalog'
  | 'token_issued'
  | 'auth_failed'
  | 'denied'
  /** A /v2 request the route grammar refused before access control: a bad name, a push, a path trick. */
  | 'bad_request';

/**
 * One audit line. Every key is always present (null when it does not apply), in this order, so a
 * log pipeline can map it to a fixed schema; `log: "audit"` tells it apart from application lines
 * when both go to stdout. Nothing here is taken from a header or query string except the user name
 * tried on auth_failed and the forwarded client address, which is checked to be an IP address.
 */
export interface AuditLine {
  readonly log: 'audit';
  readonly time: string;
  readonly action: AuditAction;
  /** For `denied` and `auth_failed`: what the request would have done (`pull_manifest`, …); else null. */
  readonly attempted: AuditAction | null;
  /** A user, a robot token's name, a certificate's CN, or `anonymous`. */
  readonly subject: string;
  /** How the subject proved itself; on refusals, how credentials were presented. */
  readonly method: string | null;
  readonly client: string | null;
  readonly upstream: string | null;
  readonly repository: string | null;
  /** The tag or digest asked for. */
  readonly reference: string | null;
  /** The digest of what was served. */
  readonly digest: string | null;
  readonly head: boolean;
  /** Where the answer came from: cache, inflight (a download another request started), upstream, stale. */
  readonly source: Source | null;
  readonly status: number;
  /** Body bytes sent: 0 for HEAD, 304 and error answers. */
  readonly bytes: number;
  /** For `token_issued`: the scopes granted. */
  readonly scopes: readonly string[] | null;
  readonly requestId: string;
  /** For a `denied` read that access control allowed: the policy rule that refused the content, and why. */
  readonly reason?: string;
}

/** Route kinds (AuditEvent.action) that read something, and the action they are recorded as. */
const READS: Readonly<Record<string, AuditAction>> = {
  manifest: 'pull_manifest',
  blob: 'pull_blob',
  tags: 'list_tags',
  referrers: 'referrers',
  catalog: 'catalog',
};

/**
 * The action of an event, or undefined when it is not worth a line:
 * - token endpoint events and rejected credentials: `token_issued`, `auth_failed`;
 * - refused (403, or 401 without credentials): `denied`, with `attempted` the read it would have been;
 *   a 401 on `/v2/` without credentials is every client's login discovery step, and is left out;
 * - otherwise the read, whatever its status (a 404 pull is a pull); `/v2/` itself is left out;
 * - a request the route grammar refused: `bad_request`. Other names (endpoints that audit themselves) are left out.
 */
export function auditAction(event: AuditEvent): { action: AuditAction; attempted: AuditAction | null } | undefined {
  const read = READS[event.action];
  if (event.event === 'token_issued') return { action: 'token_issued', attempted: null };
  if (event.event === 'auth_failed') return { action: 'auth_failed', attempted: read ?? null };
  if (event.decision === 'denied' || (event.decision === 'challenged' && event.action !== 'base')) return { action: 'denied', attempted: read ?? null };
  if (read !== undefined) return { action: read, attempted: null };
  return event.action === 'other' ? { action: 'bad_request', attempted: null } : undefined;
}

/** The line for an event, or undefined when the event is not recorded (see auditAction). */
export function auditLine(event: AuditEvent, time: Date, proxies: TrustedProxies): AuditLine | undefined {
  const what = auditAction(event);
  if (what === undefined) return undefined;
  const subject = event.principal ?? 'anonymous';
  return {
    log: 'audit',
    time: time.toISOString(),
    action: what.action,
    attempted: what.attempted,
    subject,
    method: event.authMethod ?? (subject === 'anonymous' ? 'anonymous' : null),
    client: proxies.clientAddress(event.remoteAddress, event.forwardedFor) ?? null,
    upstream: event.upstream ?? null,
    repository: event.repository ?? null,
    reference: event.reference ?? null,
    digest: event.digest ?? null,
    head: event.head ?? false,
    source: event.source ?? null,
    status: event.status,
    bytes: event.bytes ?? 0,
    scopes: event.scopes ?? null,
    requestId: event.requestId,
    ...(event.reason === undefined ? {} : { reason: event.reason }),
  };
}
