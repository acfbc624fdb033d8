import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { TOKEN_SERVICE, type Access, type Identity } from '../access/index.js';
import type { SigningKey } from './signing-key.js';
import { accessClaim, identityClaims, parseAccess, parseIdentity, type TokenType } from './token-claims.js';
import { InvalidCredentials, type BearerVerifier, type VerifiedToken } from './types.js';

/** Every token's `iss`: a token from any other issuer (another mirror's, a registry's) is refused. */
export const TOKEN_ISSUER = 'regmirror';

/**
 * How long a refresh token (OAuth2 `access_type=offline`) is good for. A day: long enough for a
 * build or a node that asked once to keep pulling, short enough that a leaked one expires on its own;
 * the identity it names is checked again at every use (TokenEndpointOptions.refreshIdentity).
 */
export const DEFAULT_REFRESH_TTL_MS = 24 * 3_600_000;

/** Clock difference tolerated between the replica that issued a token and the one checking it. */
export const CLOCK_SKEW_S = 30;

/** Verified access tokens remembered, so that the hot path pays one signature check per token, not per request. */
const VERIFIED_CACHE_SIZE = 4096;

export interface TokenServiceOptions {
  /** The signing key; asked for once (open(), or the first issue or verify). */
  readonly key: () => Promise<SigningKey>;
  /** `auth.tokenTTL`: an access token's life. */
  readonly ttlMs: number;
  readonly refreshTtlMs?: number;
  /** The App's clock. */
  readonly now?: () => number;
}

export interface IssuedToken {
  readonly token: string;
  /** Seconds, as the token response's `expires_in`. */
  readonly expiresIn: number;
  /** RFC 3339, as the token response's `issued_at`. */
  readonly issuedAt: string;
}

interface Remembered {
  readonly verified: VerifiedToken;
  readonly nbf: number;
  readonly exp: number;
}

/**
 * Issues and checks the mirror's JWTs (distribution's token format: docs/spec/auth/jwt.md). Only the
 * key's own algorithm verifies, so `alg: none` and an HMAC keyed with the public key both fail; the
 * issuer, the audience (the service) and the token type are checked on every token.
 */
export class TokenService implements BearerVerifier {
  private keyPromise: Promise<SigningKey> | undefined;
  private readonly ttlS: number;
  private readonly refreshTtlS: number;
  private readonly now: () => number;
  private readonly remembered = new Map<string, Remembered>();

  constructor(private readonly options: TokenServiceOptions) {
    this.ttlS = Math.floor(options.ttlMs / 1000);
    this.refreshTtlS = Math.floor((options.refreshTtlMs ?? DEFAULT_REFRESH_TTL_MS) / 1000);
    this.now = options.now ?? Date.now;
  }

  /** Loads (or generates) the key now, so a bad key fails the start rather than the first login. */
  open(): Promise<SigningKey> {
    this.keyPromise ??= this.options.key();
    return this.keyPromise;
  }

  /** An access token for exactly these accesses (possibly none: `/v2/` needs none). */
  async issue(identity: Identity, accesses: readonly Access[]): Promise<IssuedToken> {
    const iat = Math.floor(this.now() / 1000);
    const token = await this.sign({ ...identityClaims(identity), typ: 'access', access: accessClaim(accesses) }, iat, this.ttlS);
    return { token, expiresIn: this.ttlS, issuedAt: new Date(iat * 1000).toISOString() };
  }

  /** A refresh token: names the identity only; what it may read is decided again at every refresh. */
  async issueRefresh(identity: Identity): Promise<string> {
    return this.sign({ ...identityClaims(identity), typ: 'refresh' }, Math.floor(this.now() / 1000), this.refreshTtlS);
  }

  /** BearerVerifier: an access token's identity and accesses, or InvalidCredentials. */
  async verify(token: string): Promise<VerifiedToken> {
    const nowS = this.now() / 1000;
    const seen = this.remembered.get(token);
    if (seen !== undefined) {
      if (nowS + CLOCK_SKEW_S >= seen.nbf && nowS - CLOCK_SKEW_S < seen.exp) return seen.verified;
      this.remembered.delete(token);
    }
    const payload = await this.check(token, 'access');
    const verified: VerifiedToken = { identity: parseIdentity(payload), access: parseAccess(payload['access']) };
    this.remember(token, { verified, nbf: payload.nbf ?? 0, exp: payload.exp ?? 0 });
    return verified;
  }

  /** A refresh token's identity, or InvalidCredentials (an access token is not a refresh token). */
  async verifyRefresh(token: string): Promise<Identity> {
    return parseIdentity(await this.check(token, 'refresh'));
  }

  private async sign(claims: JWTPayload, iat: number, lifeS: number): Promise<string> {
    const key = await this.open();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_SERVICE)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + lifeS)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  private async check(token: string, type: TokenType): Promise<JWTPayload> {
    const key = await this.open();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        algorithms: [key.alg],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_SERVICE,
        clockTolerance: CLOCK_SKEW_S,
        currentDate: new Date(this.now()),
        requiredClaims: ['sub', 'iat', 'nbf', 'exp', 'jti'],
      }));
    } catch (err) {
      throw new InvalidCredentials(`the bearer token is not valid: ${reason(err)}`, { cause: err });
    }
    if (payload['typ'] !== type) throw new InvalidCredentials(`the bearer token is not valid: not ${type === 'access' ? 'an access' : 'a refresh'} token`);
    return payload;
  }

  private remember(token: string, entry: Remembered): void {
    // Oldest first out: Map keeps insertion order. Clients reuse one token for a whole pull, so even
    // a small cache holds every token in use.
    if (this.remembered.size >= VERIFIED_CACHE_SIZE) this.remembered.delete(this.remembered.keys().next().value as string);
    this.remembered.set(token, entry);
  }
}

/** Why jose refused a token, in words that never include the token itself. */
function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the ${err.claim} claim is not acceptable`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'signed with an algorithm this mirror does not use';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature does not match this mirror\'s key';
  return 'not a token this mirror issued';
}
