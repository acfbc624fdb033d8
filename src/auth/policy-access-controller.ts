import {
  AccessChallenge,
  AccessDenied,
  ANONYMOUS_IDENTITY,
  type Access,
  type AccessController,
  type AccessRequest,
  type Grant,
  type BearerError,
  type Identity,
  type ReadPolicy,
} from '../access/index.js';
import { parseRequest } from '../oci/index.js';
import type { ChallengeBuilder } from './registry-challenge.js';
import type { TrustedProxies } from '../observability/index.js';
import { InvalidCredentials, type BearerVerifier, type PasswordVerifier, type VerifiedToken } from './types.js';

export interface PolicyAccessControllerOptions {
  readonly policy: ReadPolicy;
  /** htpasswd users and robot tokens, sent as HTTP Basic. */
  readonly passwords: PasswordVerifier;
  /** The tokens the mirror's own token endpoint issued. */
  readonly bearer: BearerVerifier;
  /** The registry API's 401 challenge (the token service's builder, or bearerChallenge()). */
  readonly challenge: ChallengeBuilder;
  /** `auth.groups`: the groups a client certificate's CN belongs to. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  /**
   * The identity a bearer token names, as it is now: undefined once the robot token is revoked or
   * the user left htpasswd, so a token issued before stops working at once rather than at expiry.
   */
  readonly currentIdentity?: (identity: Identity) => Identity | undefined;
  /** `access.trustedProxies`: behind an ingress, failed logins are throttled per client, not per proxy. */
  readonly proxies?: TrustedProxies;
}

/**
 * The operator endpoints ask browsers and scrapers for HTTP Basic: a browser can show a login
 * dialog for it, and Prometheus' `basic_auth` sends it. A bearer token is accepted there too.
 */
export const OPS_CHALLENGE = 'Basic realm="regmirror", charset="UTF-8"';

/** Who presented what: the identity, and the token's claims when it came as a bearer token. */
interface Presented {
  readonly identity: Identity;
  readonly token?: VerifiedToken;
}

/**
 * Access control with `auth` on: identifies the client (Authorization: Basic or Bearer, else a
 * verified client certificate, else anonymous) and asks the read policy. Answers as clients expect:
 * missing or wrong credentials, or anonymous asking for what anonymous may not read → 401 with the
 * challenge (so the client logs in); authenticated but not allowed → 403 DENIED. A bearer token
 * must also name every access asked for in its `access` claim: a token for A used on B is a 401
 * `insufficient_scope`, whatever the policy says of B, so the client fetches a token for B.
 */
export class PolicyAccessController implements AccessController {
  constructor(private readonly options: PolicyAccessControllerOptions) {}

  async authorize(request: AccessRequest, accesses: readonly Access[]): Promise<Grant> {
    const { policy } = this.options;
    const challenge = (message: string, error?: BearerError) => new AccessChallenge(message, this.options.challenge(request, scopes(request, accesses), error));
    const { identity, token } = await this.identify(request, (message, bearer) => challenge(message, bearer ? 'invalid_token' : undefined));
    // `/v2/` (and the catalog) without credentials: always the challenge, as distribution and Docker
    // Hub answer. Clients set up authentication from this first answer only: after a 200 here docker
    // and containers/image never send credentials, so even a logged-in user's private pull fails.
    // A client without credentials (docker's registry-mirrors) gets an anonymous token at the realm
    // and reads what anonymous may; that token (no scope) is enough for `/v2/` itself.
    if (accesses.length === 0 && identity.kind === 'anonymous' && token === undefined) throw challenge('authentication required');
    for (const a of accesses) {
      const name = `${a.upstream}/${a.repository}`;
      if (!policy.canRead(identity, a.upstream, a.repository)) {
        if (identity.kind === 'anonymous') throw challenge(`authentication required to read ${name}`);
        throw new AccessDenied(`${identity.subject} may not read ${name}`, identity.subject);
      }
      if (token !== undefined && !token.access.some((t) => t.action === a.action && t.upstream === a.upstream && t.repository === a.repository)) {
        throw challenge(`the token does not grant ${a.action} on ${name}`, 'insufficient_scope');
      }
    }
    return { principal: identity.subject, identity };
  }

  async authorizeOps(request: AccessRequest, endpoint: 'metrics' | 'admin'): Promise<Grant> {
    const { policy } = this.options;
    if (endpoint === 'metrics' && policy.metricsOpen) return { principal: ANONYMOUS_IDENTITY.subject, identity: ANONYMOUS_IDENTITY };
    const { identity } = await this.identify(request, (message) => new AccessChallenge(message, OPS_CHALLENGE));
    if (identity.kind === 'anonymous') throw new AccessChallenge(`authentication required for the ${endpoint} endpoints`, OPS_CHALLENGE);
    if (!policy.isAdmin(identity)) throw new AccessDenied(`${identity.subject} is not in access.admin`, identity.subject);
    return { principal: identity.subject, identity };
  }

  canRead(grant: Grant, upstream: string, repository: string): boolean {
    return this.options.policy.canRead(grant.identity ?? ANONYMOUS_IDENTITY, upstream, repository);
  }

  /** The address failed logins count against: the socket peer, or the client a trusted proxy names. */
  private clientOf(request: AccessRequest): string | undefined {
    const forwarded = request.headers['x-forwarded-for'];
    return this.options.proxies?.clientAddress(request.remoteAddress, Array.isArray(forwarded) ? forwarded.join(', ') : forwarded) ?? request.remoteAddress;
  }

  /**
   * Credentials in the Authorization header win over a client certificate; wrong ones never fall
   * back to it or to anonymous (a client that sent a password meant to be someone).
   */
  private async identify(request: AccessRequest, refuse: (message: string, bearer: boolean) => AccessChallenge): Promise<Presented> {
    const header = request.headers.authorization;
    if (header === undefined || header === '') {
      const cn = request.clientCertificate;
      if (cn === undefined) return { identity: ANONYMOUS_IDENTITY };
      return { identity: { subject: cn, kind: 'user', method: 'certificate', groups: groupsOf(this.options.groups, cn) } };
    }
    const space = header.indexOf(' ');
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const credentials = space < 0 ? '' : header.slice(space + 1).trim();
    try {
      if (scheme === 'bearer' && credentials !== '') {
        const token = await this.options.bearer.verify(credentials);
        const identity = this.options.currentIdentity === undefined ? token.identity : this.options.currentIdentity(token.identity);
        if (identity === undefined) throw new InvalidCredentials(`${token.identity.subject} was revoked or removed`);
        return { identity, token };
      }
      if (scheme === 'basic') {
        const decoded = Buffer.from(credentials, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon >= 0) return { identity: await this.options.passwords.verify(decoded.slice(0, colon), decoded.slice(colon + 1), this.clientOf(request)) };
      }
    } catch (err) {
      if (err instanceof InvalidCredentials) throw refuse('invalid credentials', scheme === 'bearer');
      throw err;
    }
    throw refuse(`unsupported or malformed ${scheme} credentials`, scheme === 'bearer');
  }
}

function groupsOf(groups: ReadonlyMap<string, readonly string[]>, user: string): string[] {
  return [...groups].filter(([, members]) => members.includes(user)).map(([group]) => group);
}

/**
 * `repository:<name>:pull` per access. The name is the client's own (what it will ask the realm
 * for) unless the request used `?ns=`: a name that only resolves with the query is given as
 * `<upstream>/<repository>`, which resolves the same without it.
 */
function scopes(request: AccessRequest, accesses: readonly Access[]): string[] {
  let parsed: ReturnType<typeof parseRequest>;
  try {
    parsed = parseRequest(request.method, request.url);
  } catch {
    parsed = undefined;
  }
  const clientName = parsed?.kind === 'repository' && !parsed.query.has('ns') && accesses.length === 1 ? parsed.clientName : undefined;
  return accesses.map((a) => `repository:${clientName ?? `${a.upstream}/${a.repository}`}:${a.action}`);
}
