import type { OnlineUpstreamConfig } from '../config/index.js';
import { parseChallenges } from './challenge.js';
import type { Headers } from './responses.js';
import { basicAuthorization, type TokenAuth, type TokenRealm } from './token-auth.js';

/** What one attempt sent, so a 401 to it can be answered (or judged final). */
export type Credential =
  | { readonly kind: 'none'; readonly header: undefined }
  | { readonly kind: 'basic'; readonly header: string }
  | {
      readonly kind: 'bearer';
      readonly header: string;
      readonly token: string;
      readonly realm: TokenRealm;
      /** The configured credentials reached the realm and it accepted them. */
      readonly credentialed: boolean;
    };

type Scheme = { readonly kind: 'unknown' } | { readonly kind: 'basic' } | { readonly kind: 'bearer'; readonly realm: TokenRealm };

const ANONYMOUS: Credential = { kind: 'none', header: undefined };

/**
 * Which credentials to send to one upstream. Starts anonymous; the first challenge teaches the scheme
 * (and realm), after which requests carry a token or Basic up front instead of paying a 401 each —
 * what distribution's challenge manager does. Challenges are followed, never guessed: ghcr.io refuses
 * Basic on registry endpoints (registry-protocol.md §3.3, §3.7).
 */
export class Authorizer {
  private scheme: Scheme = { kind: 'unknown' };

  constructor(
    private readonly config: OnlineUpstreamConfig,
    private readonly tokens: TokenAuth,
  ) {}

  get hasCredentials(): boolean {
    return this.config.username !== undefined && this.config.password !== undefined;
  }

  /** Credentials for the first attempt at a request for `repo`. */
  async initial(repo: string): Promise<Credential> {
    const scheme = this.scheme;
    switch (scheme.kind) {
      case 'unknown':
        return ANONYMOUS;
      case 'basic':
        return this.basic() ?? ANONYMOUS;
      case 'bearer':
        return this.bearer(scheme.realm, pullScope(repo));
    }
  }

  /**
   * Credentials for the single retry after a 401 to `sent`, or undefined when nothing better can be
   * sent (then the 401 is final). A refused token is dropped first so the retry carries a fresh one.
   */
  async answer(repo: string, wwwAuthenticate: Headers[string], sent: Credential): Promise<Credential | undefined> {
    const challenges = parseChallenges(wwwAuthenticate);
    for (const c of challenges) {
      if (c.scheme !== 'bearer') continue;
      const realm = parseRealm(c.params.get('realm'));
      if (realm === undefined) continue;
      const tokenRealm: TokenRealm = { realm, service: c.params.get('service') };
      this.scheme = { kind: 'bearer', realm: tokenRealm };
      const scope = pullScope(repo);
      if (sent.kind === 'bearer') this.tokens.invalidate(sent.realm, scope, sent.token);
      // The challenge's own scope wins (it may differ in spelling or add actions); cached per repo.
      return this.bearer(tokenRealm, scope, c.params.get('scope'));
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = { kind: 'basic' };
      return sent.kind === 'basic' ? undefined : this.basic();
    }
    return undefined;
  }

  private basic(): Credential | undefined {
    const { username, password } = this.config;
    if (username === undefined || password === undefined) return undefined;
    return { kind: 'basic', header: basicAuthorization(username, password) };
  }

  private async bearer(realm: TokenRealm, scope: string, requestScope?: string): Promise<Credential> {
    const issued = await this.tokens.get(realm, scope, requestScope ?? scope);
    return { kind: 'bearer', header: `Bearer ${issued.token}`, token: issued.token, realm, credentialed: issued.credentialed };
  }
}

/** The `repo` an upstream passes for /v2/_catalog, which has a registry-wide scope instead. */
export const CATALOG_SCOPE_KEY = '_catalog';

/** distribution's scope grammar (spec/auth/scope.md): pull access to one repository, or the catalog. */
function pullScope(repo: string): string {
  // `_catalog` cannot be a repository name (components start with a letter or digit).
  return repo === CATALOG_SCOPE_KEY ? 'registry:catalog:*' : `repository:${repo}:pull`;
}

function parseRealm(value: string | undefined): URL | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    if (url.username !== '' || url.password !== '') return undefined;
    return url;
  } catch {
    return undefined;
  }
}
