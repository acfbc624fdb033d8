import type { IncomingMessage, ServerResponse } from 'node:http';
import { ANONYMOUS, scopeOf, TOKEN_PATH, type Access, type Identity } from '../access/index.js';
import { InvalidCredentials, type PasswordVerifier, type TokenService } from '../auth/index.js';
import { OciError, type RepositoryName, type RouteContext } from '../oci/index.js';
import { noopAudit, type AuditSink, type TrustedProxies } from '../observability/index.js';
import { readTokenRequest, resolveScopes, type TokenGrant } from './token-request.js';

/** Whether the read policy lets an identity pull a repository (the policy's own question, asked per scope). */
export type CanRead = (identity: Identity, upstream: string, repository: RepositoryName) => boolean | Promise<boolean>;

export interface TokenEndpointOptions {
  readonly tokens: TokenService;
  /** htpasswd users and robot tokens; throttles failures per address itself. */
  readonly passwords: PasswordVerifier;
  readonly canRead: CanRead;
  /** The same resolution the registry routes use, so a scope names what a request path names. */
  readonly routes: RouteContext;
  readonly audit?: AuditSink;
  /**
   * The identity a refresh token names, as it is now: undefined when the user or robot token is
   * gone, so removing a user or revoking a token ends its refresh tokens too. Without it, a refresh
   * token is good for its whole life.
   */
  readonly refreshIdentity?: (identity: Identity) => Promise<Identity | undefined>;
  /** `access.trustedProxies`: behind an ingress, failed logins are throttled per client, not per proxy. */
  readonly proxies?: TrustedProxies;
}

/** What one token request is about, for its audit event. */
interface Caller {
  readonly requestId: string;
  readonly remoteAddress: string | undefined;
  readonly forwardedFor: string | undefined;
}

const ANONYMOUS_IDENTITY: Identity = { subject: ANONYMOUS, kind: 'anonymous', method: 'anonymous', groups: [] };

/** RFC 6749 §5.1: a token response must not be cached by anything on the way. */
const NO_STORE = { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' };

/**
 * `GET|POST /v2/token`: the registry token endpoint (distribution docs/spec/auth/token.md and
 * oauth.md). A scope the caller may not read is left out of the token, not refused: the client finds
 * out with a 403 on the request itself, as with distribution's token server.
 */
export class TokenEndpoint {
  private readonly audit: AuditSink;

  constructor(private readonly options: TokenEndpointOptions) {
    this.audit = options.audit ?? noopAudit;
  }

  /** Whether a request target is the token endpoint (any query). */
  matches(url: string | undefined): boolean {
    const path = (url ?? '').split('?', 1)[0];
    return path === TOKEN_PATH;
  }

  async serve(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'POST') {
      throw new OciError('UNSUPPORTED', 'the token endpoint takes GET or POST', { headers: { allow: 'GET, POST' } });
    }
    const forwarded = req.headers['x-forwarded-for'];
    const caller: Caller = { requestId, remoteAddress: req.socket.remoteAddress, forwardedFor: Array.isArray(forwarded) ? forwarded.join(', ') : forwarded };
    const asked = await readTokenRequest(req);
    // Resolved before any credential is checked: a malformed scope costs no password hash.
    const accesses = resolveScopes(asked.scopes, this.options.routes);
    const identity = await this.authenticate(asked.grant, caller);
    const granted = await this.grantable(identity, accesses);
    const issued = await this.options.tokens.issue(identity, granted);
    const refreshToken = asked.offline && asked.grant.kind === 'password' ? await this.options.tokens.issueRefresh(identity) : undefined;
    const scopes = granted.map(scopeOf);
    this.record(caller, 'token_issued', identity.subject, methodOf(asked.grant, identity), 200, scopes);
    const body = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      ...(asked.oauth ? { scope: scopes.join(' ') } : {}),
    };
    res.writeHead(200, NO_STORE).end(JSON.stringify(body));
  }

  private async authenticate(grant: TokenGrant, caller: Caller): Promise<Identity> {
    if (grant.kind === 'anonymous') return ANONYMOUS_IDENTITY;
    try {
      if (grant.kind === 'password') return await this.options.passwords.verify(grant.username, grant.password, this.options.proxies?.clientAddress(caller.remoteAddress, caller.forwardedFor) ?? caller.remoteAddress);
      const named = await this.options.tokens.verifyRefresh(grant.refreshToken);
      const current = this.options.refreshIdentity === undefined ? named : await this.options.refreshIdentity(named);
      if (current === undefined) throw new InvalidCredentials(`${named.subject} no longer exists`);
      return current;
    } catch (err) {
      if (!(err instanceof InvalidCredentials)) throw err;
      // The name tried is recorded, never the password; a refresh token's subject is not known yet.
      this.record(caller, 'auth_failed', grant.kind === 'password' ? grant.username : undefined, methodOf(grant), 401, undefined);
      // One message for an unknown user and a wrong password: the answer must not tell which names exist.
      const message = grant.kind === 'password' ? 'incorrect username or password' : 'the refresh token is not valid; log in again';
      throw new OciError('UNAUTHORIZED', message, { cause: err });
    }
  }

  private async grantable(identity: Identity, accesses: readonly Access[]): Promise<Access[]> {
    const allowed = await Promise.all(accesses.map((a) => this.options.canRead(identity, a.upstream, a.repository)));
    return accesses.filter((_, i) => allowed[i] === true);
  }

  private record(caller: Caller, event: 'token_issued' | 'auth_failed', principal: string | undefined, authMethod: string, status: number, scopes: readonly string[] | undefined): void {
    this.audit.record({
      event,
      requestId: caller.requestId,
      principal,
      authMethod,
      remoteAddress: caller.remoteAddress,
      forwardedFor: caller.forwardedFor,
      ...(scopes === undefined ? {} : { scopes }),
      action: 'token',
      upstream: undefined,
      repository: undefined,
      reference: undefined,
      decision: event === 'token_issued' ? 'allowed' : 'challenged',
      source: undefined,
      bytes: undefined,
      status,
    });
  }
}

/** How the caller proved itself in this request: the verifier's word for a password, else the grant. */
function methodOf(grant: TokenGrant, identity?: Identity): string {
  if (grant.kind === 'refresh') return 'refresh_token';
  if (grant.kind === 'anonymous') return 'anonymous';
  return identity?.method ?? 'basic';
}
