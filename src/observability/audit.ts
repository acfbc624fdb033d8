import type { Source } from '../mirror/index.js';

/** How access control answered a request; `none` when it was refused before anyone was asked. */
export type AuditDecision = 'allowed' | 'denied' | 'challenged' | 'none';

/**
 * One registry request, for an audit trail: who asked for what and what they got. Unlike the access
 * log line it does not depend on the log level, and carries the principal access control granted.
 */
export interface AuditEvent {
  readonly requestId: string;
  /** The granted principal; undefined when the request was not authorized (refused or challenged). */
  readonly principal: string | undefined;
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
