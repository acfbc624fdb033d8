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
}

/** Who was let in; recorded with every request. */
export interface Grant {
  readonly principal: string;
}

/**
 * Decides whether a request may have every access it asks for. Resolves with a grant, or throws
 * AccessDenied (authenticated, not allowed) or AccessChallenge (credentials missing or wrong: the
 * client should authenticate and retry). An empty list still authenticates: `/v2/` is how clients
 * learn whether, and where, to log in.
 */
export interface AccessController {
  authorize(request: AccessRequest, accesses: readonly Access[]): Promise<Grant>;
}

export const ANONYMOUS = 'anonymous';

/** Everyone may pull everything: the mirror without access control. */
export const allowAll: AccessController = {
  authorize: () => Promise.resolve({ principal: ANONYMOUS }),
};
