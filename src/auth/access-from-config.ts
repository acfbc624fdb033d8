import { allowAll, ReadPolicy, type AccessController, type Identity } from '../access/index.js';
import type { Config, RepositoryPattern } from '../config/index.js';
import { TrustedProxies } from '../observability/index.js';
import { PolicyAccessController } from './policy-access-controller.js';
import { bearerChallenge, type ChallengeBuilder } from './registry-challenge.js';
import { InvalidCredentials, type BearerVerifier, type PasswordVerifier } from './types.js';

/** The credential sources an access controller is built with; each may be absent. */
export interface CredentialSources {
  readonly passwords?: PasswordVerifier;
  readonly bearer?: BearerVerifier;
  /** The registry API's challenge; bearerChallenge(auth.realm) by default. */
  readonly challenge?: ChallengeBuilder;
  /** A robot token's own read patterns. */
  readonly tokenPatterns?: (name: string) => readonly RepositoryPattern[] | undefined;
  /** The identity a bearer token names, as it is now (undefined once revoked or removed). */
  readonly currentIdentity?: (identity: Identity) => Identity | undefined;
}

/** A credential source that is not configured recognises nobody: those clients get the challenge. */
export const NO_PASSWORDS: PasswordVerifier = { verify: () => Promise.reject(new InvalidCredentials('no password source is configured')) };
const NO_BEARER: BearerVerifier = { verify: () => Promise.reject(new InvalidCredentials('no token issuer is configured')) };

/** allowAll without `auth` (everyone reads everything, as before auth existed); the read policy with it. */
export function accessControllerFor(config: Pick<Config, 'auth' | 'access' | 'upstreams'>, sources: CredentialSources = {}): { controller: AccessController; policy?: ReadPolicy } {
  const { auth, access, upstreams } = config;
  if (auth === undefined) return { controller: allowAll };
  const policy = new ReadPolicy({
    access,
    privateUpstreams: new Set([...upstreams.values()].filter((u) => u.private).map((u) => u.name)),
    tokenPatterns: sources.tokenPatterns,
  });
  const controller = new PolicyAccessController({
    policy,
    passwords: sources.passwords ?? NO_PASSWORDS,
    bearer: sources.bearer ?? NO_BEARER,
    challenge: sources.challenge ?? bearerChallenge(auth.realm),
    groups: auth.groups,
    ...(sources.currentIdentity === undefined ? {} : { currentIdentity: sources.currentIdentity }),
    proxies: new TrustedProxies(access.trustedProxies),
  });
  return { controller, policy };
}

/**
 * What an operator must hear at start-up: content the mirror's own credentials can read being open
 * to anyone who reaches it, and anonymous patterns a private upstream overrides.
 */
export function securityWarnings(config: Pick<Config, 'auth' | 'upstreams'>, policy: ReadPolicy | undefined): { fields: Record<string, unknown>; message: string }[] {
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  if (config.auth === undefined) {
    for (const u of config.upstreams.values()) {
      if (u.username === undefined) continue;
      warnings.push({
        fields: { upstream: u.name },
        message: `upstream ${u.name} has credentials but no \`auth\` is configured: ANYONE WHO CAN REACH THIS MIRROR CAN READ EVERYTHING THOSE CREDENTIALS CAN (configure \`auth\` and \`upstreams.${u.name}.private: true\`)`,
      });
    }
  }
  for (const p of policy?.ignoredAnonymous ?? []) {
    warnings.push({ fields: { upstream: p.upstream, pattern: p.repository }, message: `access.anonymous names private upstream ${p.upstream}: ignored, it allows no anonymous read` });
  }
  return warnings;
}
