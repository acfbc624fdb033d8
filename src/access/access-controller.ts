import type { IncomingHttpHeaders } from 'node:http';
import type { RepositoryName } from '../oci/index.js';

/** The only action a read-only mirror serves; push and delete are refused by the route grammar. */
export type Action = 'pull';

/**
 * One thing a request needs: an action on a repository of an upstream, as resolved from the client's
 * name (the resolved name, so `alpine`, `docker.io/alpine` and `?ns=docker.io` are one resource).
 */
export interface Access {
  readonly upstream: string;
  readonly repository: RepositoryName;
  readonly action: Action;
}

/** What the controller sees of a request: enough to read credentials, nothing to answer with. */
export interface AccessRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The peer's address as the socket reports it (a proxy's, behind one); failed logins are throttled per address. */
  readonly remoteAddress?: string;
  /** The subject CN of a client certificate the TLS handshake verified against `tls.clientCA`. */
  readonly clientCertificate?: string;
  /** Whether the connection is TLS: a challenge's derived realm uses the scheme the client came by. */
  readonly secure?: boolean;
}

/** How an identity proved itself. */
export type AuthMethod = 'anonymous' | 'basic' | 'bearer' | 'robot' | 'certificate';

/** Who is asking, once credentials are checked: what the policy decides on and the audit log records. */
export interface Identity {
  /** A user name, a robot token's name, a certificate's CN, or `anonymous`. */
  readonly subject: string;
  /** What `access.rules` match the subject against: `users` (users and certificates) or `tokens`. */
  readonly kind: 'anonymous' | 'user' | 'token';
  readonly method: AuthMethod;
  /** From `auth.groups`. */
  readonly groups: readonly string[];
}

/** Who was let in; recorded with every request. */
export interface Grant {
  /** `identity.subject`, kept as the name every log line already uses. */
  readonly principal: string;
  readonly identity?: Identity;
}

/**
 * Decides whether a request may have every access it asks for. Resolves with a grant, or throws
 * AccessDenied (authenticated, not allowed) or AccessChallenge (credentials missing or wrong: the
 * client should authenticate and retry). An empty list still authenticates: `/v2/` is how clients
 * learn whether, and where, to log in.
 */
export interface AccessController {
  authorize(request: AccessRequest, accesses: readonly Access[]): Promise<Grant>;
  /**
   * The operator endpoints: `metrics` (/metrics, under `access.metrics`) or `admin` (/api/status, the
   * status page, sync control, under `access.admin`). Same answers as authorize().
   */
  authorizeOps(request: AccessRequest, endpoint: 'metrics' | 'admin'): Promise<Grant>;
  /** Whether a grant already given may read a repository: filters listings such as the catalog. */
  canRead(grant: Grant, upstream: string, repository: RepositoryName): boolean;
}

export const ANONYMOUS = 'anonymous';

/** Whoever sent no credentials. */
export const ANONYMOUS_IDENTITY: Identity = { subject: ANONYMOUS, kind: 'anonymous', method: 'anonymous', groups: [] };

/** Everyone may pull everything: the mirror without access control. */
export const allowAll: AccessController = {
  authorize: () => Promise.resolve({ principal: ANONYMOUS }),
  authorizeOps: () => Promise.resolve({ principal: ANONYMOUS }),
  canRead: () => true,
};
