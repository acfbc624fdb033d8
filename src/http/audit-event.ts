import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Grant } from '../access/index.js';
import type { AuditDecision, AuditEvent } from '../observability/index.js';
import type { RequestNote } from './handlers.js';

/** What the request pipeline learnt, as the audit event needs it. */
export interface AuditFacts {
  readonly requestId: string;
  readonly routeName: string;
  readonly target: { upstream?: string; repository?: string; reference?: string };
  readonly grant: Grant | undefined;
  readonly decision: AuditDecision;
  /** Whom an AccessDenied named. */
  readonly refused: string | undefined;
  /** Why allowed content was refused (a policy rule). */
  readonly reason?: string | undefined;
  readonly note: RequestNote;
}

/** A user name longer than this is no name: cut, so a client cannot fill the audit log through it. */
const MAX_USERNAME = 128;

/**
 * The audit event of a finished /v2 request. A challenge answered to a request that carried
 * credentials is `auth_failed`, naming the Basic user name tried (never the password or token).
 */
export function auditEvent(req: IncomingMessage, res: ServerResponse, facts: AuditFacts): AuditEvent {
  const { grant, decision, note, target } = facts;
  const offered = presentedCredentials(req.headers.authorization);
  const failed = decision === 'challenged' && offered !== undefined;
  const digest = res.statusCode < 400 ? res.getHeader('docker-content-digest') : undefined;
  const forwardedFor = req.headers['x-forwarded-for'];
  return {
    event: failed ? 'auth_failed' : 'request',
    requestId: facts.requestId,
    principal: grant?.principal ?? facts.refused ?? (failed ? offered.username : undefined),
    authMethod: grant?.identity?.method ?? (grant === undefined ? offered?.method : undefined),
    remoteAddress: req.socket.remoteAddress,
    forwardedFor: typeof forwardedFor === 'string' ? forwardedFor : undefined,
    action: facts.routeName,
    upstream: target.upstream,
    repository: target.repository,
    reference: target.reference,
    digest: typeof digest === 'string' ? digest : undefined,
    head: req.method === 'HEAD',
    decision,
    source: note.source,
    bytes: note.bytes,
    status: res.statusCode,
    ...(facts.reason === undefined ? {} : { reason: facts.reason }),
  };
}

/** How a request presented credentials, if it did: the scheme, and for Basic the user name. */
function presentedCredentials(header: string | undefined): { method: 'basic' | 'bearer' | 'other'; username?: string } | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const [scheme = '', value = ''] = header.trim().split(/\s+/, 2);
  switch (scheme.toLowerCase()) {
    case 'basic': {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      // Without a colon there is no user name to tell apart from the secret: name nobody.
      const username = colon > 0 ? decoded.slice(0, Math.min(colon, MAX_USERNAME)) : undefined;
      return { method: 'basic', username };
    }
    case 'bearer':
      return { method: 'bearer' };
    default:
      return { method: 'other' };
  }
}
