import type { Access, Identity } from '../access/index.js';

/**
 * The credential side of the trust boundary. Each source answers "who is this?" and nothing more:
 * what an identity may read is the read policy's question (src/access).
 */

/** A user name and password (htpasswd users) or any name and a robot token's secret. */
export interface PasswordVerifier {
  /** Resolves with the identity, or throws InvalidCredentials. `remoteAddress` is what failures are throttled by. */
  verify(username: string, password: string, remoteAddress?: string): Promise<Identity>;
}

/** What a bearer token the mirror issued says, once its signature, algorithm, expiry and audience checked out. */
export interface VerifiedToken {
  readonly identity: Identity;
  /** The `access` claim: exactly what the token may be used for. */
  readonly access: readonly Access[];
}

export interface BearerVerifier {
  /** Resolves with the token's claims, or throws InvalidCredentials. */
  verify(token: string): Promise<VerifiedToken>;
}

/** Wrong, expired, revoked or malformed credentials: the client gets 401 and the challenge again. */
export class InvalidCredentials extends Error {
  override readonly name = 'InvalidCredentials';
}
