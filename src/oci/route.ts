import type { CatalogView } from './catalog.js';
import { parseDigest, type Digest } from './digest.js';
import { OciError, quoteInput } from './errors.js';
import { referrersPage } from './referrers.js';
import { officialName, parseReference, parseRepositoryName, type Reference, type RepositoryName } from './names.js';

export interface RouteContext {
  /** configured upstream names (e.g. 'docker.io', 'ghcr.io', '127.0.0.1:5001') → whether one-segment names get 'library/' */
  readonly upstreams: ReadonlyMap<string, { readonly officialLibrary: boolean }>;
  /** other names → configured name (e.g. 'index.docker.io' → 'docker.io'), accepted in ?ns= and path prefixes */
  readonly aliases: ReadonlyMap<string, string>;
  readonly defaultUpstream: string;
}

export interface RepoTarget {
  readonly upstream: string;
  readonly name: RepositoryName;
  /** the name as the client wrote it in the path, incl. any upstream prefix, for building Link URLs */
  readonly clientName: string;
  /** the ns query value the client sent, to keep it in Link URLs */
  readonly ns: string | undefined;
}

export type Route =
  | { readonly kind: 'base' }
  | { readonly kind: 'catalog'; readonly n: number | undefined; readonly last: string | undefined; readonly view: CatalogView }
  | ({ readonly kind: 'manifest'; readonly reference: Reference } & RepoTarget)
  | ({ readonly kind: 'blob'; readonly digest: Digest } & RepoTarget)
  | ({ readonly kind: 'tags'; readonly n: number | undefined; readonly last: string | undefined } & RepoTarget)
  | ({
      readonly kind: 'referrers';
      readonly digest: Digest;
      readonly artifactType: string | undefined;
      /** Upstream's paging query, relayed as is ('' for the first page). */
      readonly page: string;
    } & RepoTarget);

/** Largest page a client may ask for; distribution has no cap, but an unbounded n is a cheap DoS. */
export const MAX_PAGE_SIZE = 10_000;
/** `last` is passed upstream as data; a tag is ≤128 chars and a name ≤255. */
export const MAX_LAST_LENGTH = 256;

type Separator = 'manifests' | 'blobs' | 'referrers';
const SEPARATORS: readonly Separator[] = ['manifests', 'blobs', 'referrers'];
const TAGS_LIST = '/tags/list';
/** `/v2/<upstream>/_catalog`: no repository name can end so, as a component never starts with '_'. */
const PREFIXED_CATALOG = /^\/v2\/([^/]+)\/_catalog$/;

/**
 * A path under /v2/ that is not an API we serve. 404 (like distribution's router) so every
 * client moves on to its next host; the code is UNSUPPORTED rather than NAME_UNKNOWN or
 * MANIFEST_UNKNOWN because no repository was looked up, and dockerd turns those two into a
 * misleading "repository does not exist" message.
 */
function notFound(path: string, why: string): OciError {
  return new OciError('UNSUPPORTED', `${why}: ${quoteInput(path)}`, { status: 404 });
}

/**
 * Splits `/<name>/<api>/<ref>` (the path after `/v2`) from the right (registry-protocol.md
 * §1.3, checklist 16). The leading '/' stays so that an empty name is still found (and then
 * refused as NAME_INVALID) rather than being a different path.
 */
function splitRepoPath(rest: string, path: string): { kind: 'tags' | Separator; name: string; ref: string } {
  if (rest.endsWith(TAGS_LIST)) return { kind: 'tags', name: rest.slice(1, -TAGS_LIST.length), ref: '' };
  let best: { kind: Separator; at: number } | undefined;
  for (const kind of SEPARATORS) {
    const at = rest.lastIndexOf(`/${kind}/`);
    if (at !== -1 && (best === undefined || at > best.at)) best = { kind, at };
  }
  if (best === undefined) throw notFound(path, 'no such registry API');
  const name = rest.slice(1, best.at);
  const ref = rest.slice(best.at + best.kind.length + 2);
  // Push sessions live under /blobs/uploads/; the mirror holds none, so there is nothing to find.
  if (best.kind === 'blobs' && (ref === 'uploads' || ref.startsWith('uploads/'))) {
    throw notFound(path, 'blob uploads are not supported by this read-only mirror');
  }
  // Tags and digests never contain '/', and the rightmost separator was taken: nothing else fits.
  if (ref.includes('/')) throw notFound(path, 'no such registry API');
  return { kind: best.kind, name, ref };
}

function lookupUpstream(ctx: RouteContext, value: string): string | undefined {
  if (ctx.upstreams.has(value)) return value;
  return ctx.aliases.get(value);
}

/**
 * Maps the repository name a client wrote (with any upstream prefix) and its `?ns=` value to the
 * upstream and the repository name sent there: ?ns= first, then a path prefix, then the default,
 * then library/. Pure and callable alone, so anything naming a repository the way a client does
 * (a token scope `repository:<name>:pull`) resolves it exactly as a request path would.
 */
export function resolveTarget(ctx: RouteContext, clientName: string, ns: string | undefined): RepoTarget {
  let upstream: string;
  let name = clientName;
  if (ns !== undefined) {
    // Allowlist only (checklist 15): ns is never used as a host. 404 lets containerd fall back.
    const chosen = lookupUpstream(ctx, ns);
    if (chosen === undefined) {
      throw new OciError('NAME_UNKNOWN', `registry ${quoteInput(ns)} (ns) is not mirrored here`, { status: 404 });
    }
    upstream = chosen;
  } else {
    const slash = clientName.indexOf('/');
    const prefix = slash === -1 ? undefined : lookupUpstream(ctx, clientName.slice(0, slash));
    // Unambiguous because registry host names contain '.' or ':' and a Docker Hub
    // namespace cannot; a prefix with nothing after it is an ordinary name.
    if (prefix !== undefined && slash < clientName.length - 1) {
      upstream = prefix;
      name = clientName.slice(slash + 1);
    } else {
      upstream = ctx.defaultUpstream;
    }
  }
  // Docker Hub does not expand official images itself (§3.6); clients addressing the mirror
  // directly (`mirror:5000/alpine`) send one-segment names. Mapped before validation so the
  // length limit applies to the name that goes upstream.
  name = officialName(name, ctx.upstreams.get(upstream)?.officialLibrary === true);
  return { upstream, name: parseRepositoryName(name), clientName, ns };
}

/** ?ns= first, then the path prefix, as for a repository; either naming no upstream is NAME_UNKNOWN. */
function catalogView(ctx: RouteContext, ns: string | undefined, prefix: string | undefined): CatalogView {
  const chosen = ns ?? prefix;
  if (chosen === undefined) return { kind: 'all' };
  const upstream = lookupUpstream(ctx, chosen);
  if (upstream === undefined) throw new OciError('NAME_UNKNOWN', `registry ${quoteInput(chosen)} is not mirrored here`, { status: 404 });
  return ns !== undefined ? { kind: 'ns', upstream, ns } : { kind: 'prefix', upstream, prefix: chosen };
}

function parsePageSize(value: string | null): number | undefined {
  if (value === null) return undefined;
  // Decimal digits only: no sign, exponent, hex or whitespace that Number() would accept.
  if (!/^\d{1,6}$/.test(value) || Number(value) > MAX_PAGE_SIZE) {
    throw new OciError('PAGINATION_NUMBER_INVALID', `n must be an integer from 0 to ${MAX_PAGE_SIZE}, got ${quoteInput(value)}`);
  }
  return Number(value);
}

function parseLast(value: string | null, kind: 'tags' | 'catalog'): string | undefined {
  // An empty last means "from the start", the same as none.
  if (value === null || value === '') return undefined;
  if (value.length > MAX_LAST_LENGTH) {
    throw new OciError(kind === 'tags' ? 'TAG_INVALID' : 'NAME_INVALID', `last is longer than ${MAX_LAST_LENGTH} characters`);
  }
  return value;
}

/**
 * A manifest path's `<reference>`. A reference that is neither a tag nor a digest is answered
 * 404 MANIFEST_UNKNOWN, as by distribution, whose manifest route only matches valid references:
 * no manifest can exist under it, and the spec (and its conformance suite, which asks for
 * `.INVALID_MANIFEST_NAME`) wants 404 for a manifest that does not exist. A malformed digest
 * stays DIGEST_INVALID 400, which the spec allows for a malformed digest.
 */
function parseManifestReference(ref: string): Reference {
  try {
    return parseReference(ref);
  } catch (err) {
    if (err instanceof OciError && err.code === 'TAG_INVALID') {
      throw new OciError('MANIFEST_UNKNOWN', `manifest unknown: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * A request target split by the route grammar alone: nothing validated that needs the
 * configuration (which upstream, which repository name goes there).
 */
export type ParsedRequest =
  | { readonly kind: 'base' }
  | {
      readonly kind: 'catalog';
      readonly n: number | undefined;
      readonly last: string | undefined;
      readonly ns: string | undefined;
      /** The upstream name or alias before `/_catalog`, if any. */
      readonly prefix: string | undefined;
    }
  | { readonly kind: 'repository'; readonly api: 'tags' | Separator; readonly clientName: string; readonly ref: string; readonly query: URLSearchParams };

/**
 * The route grammar: method + raw request target → split request. undefined for paths outside
 * /v2 (the HTTP layer serves those); OciError for anything under /v2 we refuse.
 */
export function parseRequest(method: string, rawUrl: string): ParsedRequest | undefined {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (path !== '/v2' && !path.startsWith('/v2/')) return undefined;
  // Read-only mirror (§1.1): checked first, so a push with a bad name still learns it is a 405.
  if (method !== 'GET' && method !== 'HEAD') {
    throw new OciError('UNSUPPORTED', `${quoteInput(method)} is not supported: this mirror is read-only`, {
      headers: { allow: 'GET, HEAD' },
    });
  }
  // req.url is not percent-decoded and no valid name, tag or digest contains '%': refusing it
  // outright means no decoding trick (%2e%2e%2f) can reach a storage path or upstream URL.
  if (path.includes('%')) throw new OciError('NAME_INVALID', `percent-encoding is not allowed in registry paths: ${quoteInput(path)}`);
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };

  const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
  const prefixed = PREFIXED_CATALOG.exec(path);
  if (path === '/v2/_catalog' || prefixed !== null) {
    const page = { n: parsePageSize(query.get('n')), last: parseLast(query.get('last'), 'catalog') };
    return { kind: 'catalog', ...page, ns: query.get('ns') ?? undefined, prefix: prefixed?.[1] };
  }
  const split = splitRepoPath(path.slice('/v2'.length), path);
  return { kind: 'repository', api: split.kind, clientName: split.name, ref: split.ref, query };
}

/**
 * A split request → typed route: the target is resolved (resolveTarget) before the reference and
 * query are validated, so an unmirrored ?ns= is NAME_UNKNOWN whatever else is wrong.
 */
export function resolveRoute(parsed: ParsedRequest, ctx: RouteContext): Route {
  if (parsed.kind === 'base') return parsed;
  if (parsed.kind === 'catalog') return { kind: 'catalog', n: parsed.n, last: parsed.last, view: catalogView(ctx, parsed.ns, parsed.prefix) };
  const { query } = parsed;
  const target = resolveTarget(ctx, parsed.clientName, query.get('ns') ?? undefined);
  switch (parsed.api) {
    case 'manifests':
      return { kind: 'manifest', ...target, reference: parseManifestReference(parsed.ref) };
    case 'blobs':
      return { kind: 'blob', ...target, digest: parseDigest(parsed.ref) };
    case 'referrers':
      return { kind: 'referrers', ...target, digest: parseDigest(parsed.ref), artifactType: query.get('artifactType') ?? undefined, page: referrersPage(query) };
    case 'tags':
      return { kind: 'tags', ...target, n: parsePageSize(query.get('n')), last: parseLast(query.get('last'), 'tags') };
  }
}

/** parseRequest then resolveRoute: undefined outside /v2. */
export function parseRoute(method: string, rawUrl: string, ctx: RouteContext): Route | undefined {
  const parsed = parseRequest(method, rawUrl);
  return parsed === undefined ? undefined : resolveRoute(parsed, ctx);
}
