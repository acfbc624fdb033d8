import { challengeFor, type AccessRequest, type BearerError } from '../access/index.js';

/**
 * The `WWW-Authenticate` value of a 401 from the registry API. `scopes` are complete scope strings
 * (`repository:<name>:pull`), none for `/v2/`.
 */
export type ChallengeBuilder = (request: AccessRequest, scopes: readonly string[], error?: BearerError) => string;

/** The mirror's own token endpoint as the realm: `auth.realm`, else derived from the request (access/challenge.ts). */
export function bearerChallenge(realm: string | undefined): ChallengeBuilder {
  return (request, scopes, error) => challengeFor(request, scopes, { realm, ...(error === undefined ? {} : { error }) });
}
