import type { JWTPayload } from 'jose';
import type { Access, AuthMethod, Identity } from '../access/index.js';
import { parseRepositoryName } from '../oci/index.js';
import { InvalidCredentials } from './types.js';

/**
 * What a token says beyond the registered claims. Every field is re-validated on the way back in:
 * the signature says the mirror wrote it, not that this version of the mirror would have.
 */

/** `typ` claim: an access token (sent on /v2 requests) or a refresh token (only good at the token endpoint). */
export type TokenType = 'access' | 'refresh';

/** distribution's `access` claim entry (docs/spec/auth/jwt.md). */
interface AccessClaim {
  readonly type: 'repository';
  readonly name: string;
  readonly actions: readonly string[];
}

const KINDS: ReadonlySet<string> = new Set<Identity['kind']>(['anonymous', 'user', 'token']);
const METHODS: ReadonlySet<string> = new Set<AuthMethod>(['anonymous', 'basic', 'bearer', 'robot', 'certificate']);

/** The claims that carry the identity: subject plus what the read policy matches on. */
export function identityClaims(identity: Identity): JWTPayload {
  return { sub: identity.subject, kind: identity.kind, method: identity.method, groups: [...identity.groups] };
}

/** One entry per repository, named `<upstream>/<repository>` as scopes are (access/challenge.ts scopeOf). */
export function accessClaim(accesses: readonly Access[]): AccessClaim[] {
  const byName = new Map<string, Set<string>>();
  for (const a of accesses) {
    const name = `${a.upstream}/${a.repository}`;
    const actions = byName.get(name) ?? new Set<string>();
    byName.set(name, actions.add(a.action));
  }
  return [...byName].map(([name, actions]) => ({ type: 'repository', name, actions: [...actions] }));
}

function malformed(what: string): InvalidCredentials {
  return new InvalidCredentials(`the bearer token is malformed: ${what}`);
}

export function parseIdentity(payload: JWTPayload): Identity {
  const { sub, kind, method, groups } = payload;
  if (typeof sub !== 'string' || sub === '') throw malformed('no subject');
  if (typeof kind !== 'string' || !KINDS.has(kind)) throw malformed('unknown identity kind');
  if (typeof method !== 'string' || !METHODS.has(method)) throw malformed('unknown authentication method');
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) throw malformed('groups is not a list of names');
  return { subject: sub, kind: kind as Identity['kind'], method: method as AuthMethod, groups };
}

/** The `access` claim back to resolved accesses; anything the mirror would not have written fails the token. */
export function parseAccess(claim: unknown): Access[] {
  if (!Array.isArray(claim)) throw malformed('no access claim');
  return claim.flatMap((entry: unknown): Access[] => {
    const { type, name, actions } = (entry ?? {}) as Partial<Record<keyof AccessClaim, unknown>>;
    if (type !== 'repository' || typeof name !== 'string') throw malformed('an access entry is not a repository');
    if (!Array.isArray(actions) || actions.some((a) => a !== 'pull')) throw malformed(`unknown action for ${JSON.stringify(name)}`);
    const slash = name.indexOf('/');
    if (slash <= 0) throw malformed(`${JSON.stringify(name)} names no upstream`);
    let repository: Access['repository'];
    try {
      repository = parseRepositoryName(name.slice(slash + 1));
    } catch {
      throw malformed(`${JSON.stringify(name)} is not a repository name`);
    }
    return actions.length === 0 ? [] : [{ upstream: name.slice(0, slash), repository, action: 'pull' }];
  });
}
