import type { AccessRequest } from '../access/index.js';

/** The `service` every challenge names and every token the mirror issues is for. */
export const SERVICE = 'regmirror';

/**
 * Why a presented credential was not enough (RFC 6750 §3.1): a bearer token that failed its
 * checks, or a valid one whose `access` claim does not cover the request (the client then asks
 * the realm for a token with the challenge's scope and retries).
 */
export type ChallengeError = 'invalid_token' | 'insufficient_scope';

/**
 * The `WWW-Authenticate` value of a 401 from the registry API. `scopes` are complete scope strings
 * (`repository:<name>:pull`), none for `/v2/`.
 */
export type ChallengeBuilder = (request: AccessRequest, scopes: readonly string[], error?: ChallengeError) => string;

/** A host[:port] or [v6]:port as a Host header may carry it; anything else never reaches a challenge. */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * `Bearer realm="<realm>",service="regmirror"[,scope="…"][,error="…"]`. The realm is `auth.realm`
 * when set (the mirror behind an ingress knows its public URL only from config), else the token
 * endpoint on the host the client addressed, https when the request came over TLS.
 */
export function bearerChallenge(realm: string | undefined): ChallengeBuilder {
  return (request, scopes, error) => {
    const where = realm ?? `${request.secure === true ? 'https' : 'http'}://${hostOf(request)}/v2/token`;
    let challenge = `Bearer realm="${where}",service="${SERVICE}"`;
    if (scopes.length > 0) challenge += `,scope="${scopes.join(' ')}"`;
    if (error !== undefined) challenge += `,error="${error}"`;
    return challenge;
  };
}

function hostOf(request: AccessRequest): string {
  const host = request.headers.host;
  // A Host that could break out of the quoted realm is not echoed: a client sending one gets a
  // realm it cannot use, which is its own problem, and nobody else's response changes.
  return host !== undefined && HOST.test(host) ? host : 'localhost';
}
