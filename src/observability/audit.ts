import type { Source } from '../mirror/index.js';

/** How access control answered a request; `none` when it was refused before anyone was asked. */
export type AuditDecision = 'allowed' | 'denied' | 'challenged' | 'none';

/**
 * One registry request, for an audit trail: who asked for what and what they got. Unlike the access
 * log line it does not depend on the log level, and carries the principal access control granted.
 */
export interface AuditEvent {
  /**
   * `request` for every finished /v2 request; `auth_failed` for one whose credentials were rejected
   * (principal: the user name tried, if any); the token endpoint adds `token_issued` and `auth_failed`.
   */
  readonly event?: 'request' | 'token_issued' | 'auth_failed';
  readonly requestId: string;
  /**
   * Who asked: the granted principal, or for a refused request whoever the refusal names (AccessDenied's
   * principal); undefined when nobody is known (challenged without credentials, refused before access control).
   */
  readonly principal: string | undefined;
  /** How the principal proved itself (access/AuthMethod: anonymous, basic, bearer, robot, certificate). */
  readonly authMethod?: string;
  /** The socket's peer; the audit log believes `forwardedFor` only when this is a trusted proxy. */
  readonly remoteAddress?: string;
  /** The X-Forwarded-For header as received. */
  readonly forwardedFor?: string;
  /** For `token_issued`: the scopes granted, as `repository:<name>:pull`. */
  readonly scopes?: readonly string[];
  /** What the request was for: the route kind ('manifest', 'blob', 'tags', 'referrers', 'base', 'catalog'). */
  readonly action: string;
  readonly upstream: string | undefined;
  readonly repository: string | undefined;
  /** The tag or digest asked for, when the route names one. */
  readonly reference: string | undefined;
  /** The digest of the content served (a tag resolved), when the answer named one. */
  readonly digest?: string;
  /** A HEAD request: the same pull, answered without a body. */
  readonly head?: boolean;
  readonly decision: AuditDecision;
  /** Where the answer came from, for manifests and blob bodies. */
  readonly source: Source | undefined;
  /** Body bytes sent. */
  readonly bytes: number | undefined;
  readonly status: number;
  /** Why content access control allowed was refused: the policy rule and its reason. */
  readonly reason?: string;
}

/** Receives one event per finished /v2 request; must not throw or block the response. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

export const noopAudit: AuditSink = { record() {} };
