import type { IncomingMessage } from 'node:http';
import { TOKEN_SERVICE, type Access } from '../access/index.js';
import { OciError, quoteInput, resolveTarget, type RouteContext } from '../oci/index.js';

/** How the caller proves who it is at the token endpoint. */
export type TokenGrant =
  | { readonly kind: 'anonymous' }
  /** HTTP Basic on GET (docker, podman, skopeo) or OAuth2 `grant_type=password` (containerd). */
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  /** OAuth2 `grant_type=refresh_token`: a refresh token this mirror issued earlier. */
  | { readonly kind: 'refresh'; readonly refreshToken: string };

export interface TokenRequest {
  readonly grant: TokenGrant;
  /** The scopes asked for, as the client wrote them (`repository:<name>:pull`). */
  readonly scopes: readonly string[];
  /** OAuth2 `access_type=offline`: a refresh token is wanted too. */
  readonly offline: boolean;
  /** Came as the OAuth2 POST (its answer names the granted `scope`). */
  readonly oauth: boolean;
}

/** A form far beyond any client's: a password, a refresh token and a handful of scopes. */
const MAX_FORM_BYTES = 16 * 1024;
/** A pull asks for one or two scopes; a compose file's worth at most. */
const MAX_SCOPES = 100;

function invalid(message: string, headers?: Record<string, string>): OciError {
  return new OciError('UNSUPPORTED', message, { status: 400, ...(headers ? { headers } : {}) });
}

/**
 * GET (query + optional Basic) or POST (an OAuth2 form, RFC 6749 §4.3 and §6, as containerd's
 * FetchTokenWithOAuth sends it) → what is asked and how the caller authenticates. Nothing here
 * checks a credential; a malformed request is refused before any password is hashed.
 */
export async function readTokenRequest(req: IncomingMessage): Promise<TokenRequest> {
  const url = req.url ?? '/';
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  if (req.method === 'GET') {
    checkService(query);
    return { grant: basicGrant(req.headers.authorization), scopes: scopeList(query.getAll('scope')), offline: false, oauth: false };
  }
  const form = await readForm(req);
  checkService(form);
  // containerd joins its scopes with spaces in one field (RFC 6749 §3.3).
  const scopes = scopeList(form.getAll('scope'));
  const offline = form.get('access_type') === 'offline';
  const grantType = form.get('grant_type');
  if (grantType === 'password') {
    const username = form.get('username');
    const password = form.get('password');
    if (username === null || password === null || password === '') throw invalid('grant_type=password needs username and password');
    return { grant: { kind: 'password', username, password }, scopes, offline, oauth: true };
  }
  if (grantType === 'refresh_token') {
    const refreshToken = form.get('refresh_token');
    if (refreshToken === null || refreshToken === '') throw invalid('grant_type=refresh_token needs refresh_token');
    return { grant: { kind: 'refresh', refreshToken }, scopes, offline, oauth: true };
  }
  throw invalid(grantType === null ? 'grant_type is missing' : `unsupported grant_type ${quoteInput(grantType)}; use password or refresh_token`);
}

/** `service` is optional (curl users leave it out) but, when given, must be this mirror's. */
function checkService(params: URLSearchParams): void {
  const service = params.get('service');
  if (service !== null && service !== TOKEN_SERVICE) throw invalid(`unknown service ${quoteInput(service)}; this mirror's is ${JSON.stringify(TOKEN_SERVICE)}`);
}

function scopeList(values: readonly string[]): string[] {
  const scopes = values.flatMap((v) => v.split(' ')).filter((s) => s !== '');
  if (scopes.length > MAX_SCOPES) throw invalid(`at most ${MAX_SCOPES} scopes per token`);
  return scopes;
}

function basicGrant(header: string | undefined): TokenGrant {
  if (header === undefined) return { kind: 'anonymous' };
  const m = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  // Never quote the header: it carries a password.
  if (m === null) throw invalid('the token endpoint takes HTTP Basic credentials or none');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw invalid('HTTP Basic credentials must be username:password');
  return { kind: 'password', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw invalid('POST /v2/token takes an application/x-www-form-urlencoded form', { connection: 'close' });
  return new URLSearchParams((await readBody(req, MAX_FORM_BYTES)).toString('utf8'));
}

/**
 * The body, up to `limit` bytes. Past it the request is left unread and the answer closes the
 * connection: destroying the request (what a for-await break does) would take the socket, and the
 * answer with it.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => invalid(`the form is larger than ${limit} bytes`, { connection: 'close' });
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | undefined) => {
      req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', finish);
      if (err === undefined) resolve(Buffer.concat(chunks));
      else reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size <= limit) return;
      req.pause();
      finish(tooLarge());
    };
    const onEnd = () => finish(undefined);
    const onClose = () => finish(invalid('the client closed the connection before sending the whole form'));
    req.on('data', onData).on('end', onEnd).on('close', onClose).on('error', finish);
  });
}

/**
 * Scopes → the accesses they name, resolved exactly as a request path would be (resolveTarget), so
 * `alpine`, `library/alpine` and `docker.io/library/alpine` are one repository. Only `repository`
 * scopes asking for pull count (a mirror grants nothing else); other resource types and actions are
 * left out, as distribution's token server leaves out what it will not grant. A name that is not a
 * repository name is a malformed request.
 */
export function resolveScopes(scopes: readonly string[], routes: RouteContext): Access[] {
  const seen = new Map<string, Access>();
  for (const scope of scopes) {
    // type:name:actions, the name may hold a port (`127.0.0.1:5001/team/app`): split at the ends.
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first <= 0 || last === first) throw invalid(`scope ${quoteInput(scope)} is not resource-type:name:actions`);
    if (scope.slice(0, first) !== 'repository') continue;
    const actions = scope.slice(last + 1).split(',');
    if (!actions.includes('pull') && !actions.includes('*')) continue;
    const target = resolveTarget(routes, scope.slice(first + 1, last), undefined);
    seen.set(`${target.upstream}/${target.name}`, { upstream: target.upstream, repository: target.name, action: 'pull' });
  }
  return [...seen.values()];
}
