import type { Source } from '../mirror/index.js';

/** How access control answered a request; `none` when it was refused before anyone was asked. */
export type AuditDecision = 'allowed' | 'denied' | 'challenged' | 'none';

/**
 * One registry request, for an audit trail: who asked for what and what they got. Unlike the access
 * log line it does not depend on the log level, and carries the principal access control granted.
 */
export interface AuditEvent {
  /** `request` for every finished /v2 request; the token endpoint adds `token_issued` and `auth_failed`. */
  readonly event?: 'request' | 'token_issued' | 'auth_failed';
  readonly requestId: string;
  /** The granted principal; undefined when the request was not authorized (refused or challenged). */
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
  readonly decision: AuditDecision;
  /** Where the body came from, for blob bodies. */
  readonly source: Source | undefined;
  /** Body bytes sent. */
  readonly bytes: number | undefined;
  readonly status: number;
}

/** Receives one event per finished /v2 request; must not throw or block the response. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

export const noopAudit: AuditSink = { record() {} };
