/** Authenticated (or anonymous and known), but not allowed the access asked for: 403 DENIED. */
export class AccessDenied extends Error {
  override readonly name = 'AccessDenied';
  constructor(
    message: string,
    readonly principal: string,
  ) {
    super(message);
  }
}

/**
 * The client must authenticate to this mirror first: 401 UNAUTHORIZED with `challenge` as the
 * WWW-Authenticate value (e.g. `Bearer realm="…",service="…",scope="repository:team/app:pull"`).
 */
export class AccessChallenge extends Error {
  override readonly name = 'AccessChallenge';
  constructor(
    message: string,
    readonly challenge: string,
  ) {
    super(message);
  }
}
