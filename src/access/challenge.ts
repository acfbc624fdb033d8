import type { IncomingHttpHeaders } from 'node:http';
import type { Access } from './access-controller.js';

/**
 * The `service` of the mirror's token flow: the `aud` of every token it issues, and what a client
 * sends back as `service=` when it asks for one. One fixed name, so that a mirror's tokens never
 * depend on the host name a client happened to use.
 */
export const TOKEN_SERVICE = 'regmirror';

/** Where the mirror's token endpoint listens. */
export const TOKEN_PATH = '/v2/token';

/** RFC 6750 §3.1: why a bearer token presented was not enough. */
export type BearerError = 'invalid_token' | 'insufficient_scope';

/** What the challenge needs to know of a request to name the token endpoint. */
export interface ChallengeRequest {
  readonly headers: IncomingHttpHeaders;
  /** Whether the connection is TLS: the derived realm must use the scheme the client reached us with. */
  readonly secure?: boolean;
}

export interface ChallengeOptions {
  /** `auth.realm`: the token endpoint's public URL, set when the mirror sits behind an ingress. */
  readonly realm?: string;
  readonly error?: BearerError;
}

/**
 * A distribution scope for an access, naming the repository by its resolved `<upstream>/<repository>`.
 * That name resolves back to the same repository (a configured upstream prefix always wins in
 * resolveTarget), whereas the client's own name may depend on a `?ns=` the token request does not carry.
 */
export function scopeOf(access: Access): string {
  return `repository:${access.upstream}/${access.repository}:${access.action}`;
}

// A Host header is the client's to choose and is echoed into a header: host[:port] or [v6]:port only,
// so no quote, comma or line break can change the challenge's meaning.
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The token endpoint's URL: `auth.realm`, else derived from the Host the client reached us by and
 * the connection's scheme. Forwarded headers are not believed here; behind a proxy, set `auth.realm`.
 */
export function tokenRealm(request: ChallengeRequest, configured?: string): string {
  if (configured !== undefined) return configured;
  const host = request.headers.host;
  const safeHost = host !== undefined && HOST.test(host) ? host : 'localhost';
  return `${request.secure === true ? 'https' : 'http'}://${safeHost}${TOKEN_PATH}`;
}

/**
 * The WWW-Authenticate value of a 401: where to get a token (realm, service) and what to ask for
 * (complete scopes such as `repository:<name>:pull`, space-separated as clients split them). `/v2/` and
 * the catalog name no scope.
 */
export function challengeFor(request: ChallengeRequest, scopes: readonly string[], options: ChallengeOptions = {}): string {
  const parts = [`realm="${tokenRealm(request, options.realm)}"`, `service="${TOKEN_SERVICE}"`];
  if (scopes.length > 0) parts.push(`scope="${scopes.join(' ')}"`);
  if (options.error !== undefined) parts.push(`error="${options.error}"`);
  return `Bearer ${parts.join(',')}`;
}
