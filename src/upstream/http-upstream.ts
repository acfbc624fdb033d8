import type { OnlineUpstreamConfig } from '../config/index.js';
import {
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  MediaType,
  referenceString,
  stripMediaTypeParams,
  type Digest,
  type PageQuery,
  type Reference,
  type RepositoryName,
} from '../oci/index.js';
import { Authorizer, CATALOG_SCOPE_KEY, type Credential } from './authorizer.js';
import { failureLine, UpstreamError } from './errors.js';
import { describeUrl } from './redact.js';
import { badResponse, discard, failureFromStatus, header, lengthHeader, readCapped, type ErrorContext, type Headers } from './responses.js';
import { TokenAuth } from './token-auth.js';
import { probeRegistry, type ProbeDeps, type ProbeReport } from './probe.js';
import { Transport, type Exchange, type SendRequest } from './transport.js';
import type { BlobResponse, ManifestHead, ManifestResponse, TagsPage, Upstream, UpstreamObserver } from './types.js';

/** A tags page of Docker Hub's biggest repositories is well under this. */
const MAX_TAGS_BYTES = 4 * 1024 * 1024;

type Outcome<T> = { readonly kind: 'value'; readonly value: T } | { readonly kind: 'challenge'; readonly challenge: Headers[string] };

export interface HttpUpstreamDeps {
  readonly observer: UpstreamObserver;
  /** The clock token lifetimes are measured by. Default Date.now. */
  readonly now?: () => number;
}

/** One configured registry over HTTP (registry-protocol.md §1, §3; checklist 6-12, 17-20). */
export class HttpUpstream implements Upstream {
  readonly name: string;
  readonly offline = false;
  private readonly transport: Transport;
  private readonly auth: Authorizer;
  /** Origin plus base path, without a trailing slash. */
  private readonly base: string;
  private readonly observer: UpstreamObserver;
  private readonly tokens: TokenAuth;
  private readonly credentials: ProbeDeps['credentials'];

  constructor(config: OnlineUpstreamConfig, deps: HttpUpstreamDeps) {
    this.name = config.name;
    this.observer = deps.observer;
    this.transport = new Transport(config, deps.observer);
    this.tokens = new TokenAuth(config, this.transport, deps.now);
    this.auth = new Authorizer(config, this.tokens);
    this.credentials = config.username !== undefined && config.password !== undefined ? { username: config.username, password: config.password } : undefined;
    this.base = `${config.url.origin}${config.url.pathname.replace(/\/+$/, '')}`;
  }

  getManifest(repo: RepositoryName, ref: Reference, accept: readonly string[], signal?: AbortSignal): Promise<ManifestResponse> {
    const url = this.url(repo, `manifests/${referenceString(ref)}`);
    return this.call(repo, { method: 'GET', url, headers: { accept: acceptHeader(accept) }, followRedirects: true, signal }, async (ex, ctx) => {
      if (ex.status !== 200) throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
      refuseEncoded(ctx, ex);
      const contentType = header(ex.headers, 'content-type');
      if (contentType === undefined || contentType.trim() === '') {
        discard(ex.body);
        throw badResponse(ctx, 'manifest without Content-Type', ex.status);
      }
      const bytes = await readCapped(ctx, ex.body, ex.headers, MAX_MANIFEST_BYTES);
      if (bytes.length === 0) throw badResponse(ctx, 'empty manifest body', ex.status);
      return { bytes, mediaType: stripMediaTypeParams(contentType), digestHeader: header(ex.headers, 'docker-content-digest') };
    });
  }

  headManifest(repo: RepositoryName, ref: Reference, accept: readonly string[], signal?: AbortSignal): Promise<ManifestHead> {
    const url = this.url(repo, `manifests/${referenceString(ref)}`);
    return this.call(repo, { method: 'HEAD', url, headers: { accept: acceptHeader(accept) }, followRedirects: true, signal }, async (ex, ctx) => {
      if (ex.status !== 200) throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
      discard(ex.body);
      refuseEncoded(ctx, ex);
      const contentType = header(ex.headers, 'content-type');
      return {
        digest: header(ex.headers, 'docker-content-digest'),
        mediaType: contentType === undefined || contentType.trim() === '' ? undefined : stripMediaTypeParams(contentType),
        size: lengthHeader(ex.headers),
      };
    });
  }

  getBlob(repo: RepositoryName, digest: Digest, options: { range?: { start: number; end?: number }; signal?: AbortSignal } = {}): Promise<BlobResponse> {
    const { range, signal } = options;
    const headers: Record<string, string> = {};
    if (range !== undefined) headers['range'] = `bytes=${range.start}-${range.end ?? ''}`;
    const url = this.url(repo, `blobs/${digest}`);
    return this.call(repo, { method: 'GET', url, headers, followRedirects: true, signal, bulk: true }, async (ex, ctx) => {
      if (ex.status !== 200 && ex.status !== 206) throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
      refuseEncoded(ctx, ex);
      if (ex.status === 206) {
        const span = parseContentRange(header(ex.headers, 'content-range'));
        // A 206 we did not ask for, or for other bytes than asked, would put wrong offsets on disk.
        if (range === undefined || span === undefined || span.start !== range.start || (range.end !== undefined && span.end > range.end)) {
          discard(ex.body);
          throw badResponse(ctx, '206 with a Content-Range that does not match the request', 206);
        }
      }
      // Range asked but 200 sent: the whole blob; the caller copes (it knows what it asked for).
      return { status: ex.status, contentLength: lengthHeader(ex.headers), body: ex.body };
    });
  }

  async headBlob(repo: RepositoryName, digest: Digest, signal?: AbortSignal): Promise<{ size: number }> {
    const url = this.url(repo, `blobs/${digest}`);
    const size = await this.call(repo, { method: 'HEAD', url, followRedirects: true, signal }, async (ex, ctx) => {
      const ok = ex.status >= 200 && ex.status < 300;
      // Storage hosts behind signed URLs may refuse HEAD (stargz-snapshotter#167); gcr.io has sent
      // HEAD without Content-Length (distribution#4895): both fall back to a one-byte GET (checklist 18).
      if (ok || ex.status === 405 || (ex.status === 403 && ex.redirected)) {
        discard(ex.body);
        if (ok) refuseEncoded(ctx, ex);
        return ok ? lengthHeader(ex.headers) : undefined;
      }
      throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
    });
    if (size !== undefined) return { size };
    return this.sizeByRangedGet(repo, url, signal);
  }

  listTags(repo: RepositoryName, query: PageQuery, signal?: AbortSignal): Promise<TagsPage> {
    return this.listPage(repo, this.url(repo, 'tags/list'), query, signal);
  }

  listReferrers(repo: RepositoryName, subject: Digest, page: string, signal?: AbortSignal): Promise<TagsPage> {
    // The page query came from upstream's own Link (or a client relaying ours): data, re-encoded.
    const url = this.url(repo, `referrers/${subject}`);
    for (const [k, v] of new URLSearchParams(page)) url.searchParams.append(k, v);
    return this.call(repo, { method: 'GET', url, headers: { accept: MediaType.ociIndex }, followRedirects: true, signal }, async (ex, ctx) => {
      if (ex.status !== 200) throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
      refuseEncoded(ctx, ex);
      const body = await readCapped(ctx, ex.body, ex.headers, MAX_TAGS_BYTES);
      return { body, link: header(ex.headers, 'link') };
    });
  }

  listCatalog(query: PageQuery, signal?: AbortSignal): Promise<TagsPage> {
    return this.listPage(CATALOG_SCOPE_KEY, new URL(`${this.base}/v2/_catalog`), query, signal);
  }

  /** A paginated JSON name list (tags or catalog), passed through with its Link header. */
  private listPage(scopeRepo: string, url: URL, query: PageQuery, signal: AbortSignal | undefined): Promise<TagsPage> {
    if (query.n !== undefined) url.searchParams.set('n', String(query.n));
    if (query.last !== undefined) url.searchParams.set('last', query.last);
    return this.call(scopeRepo, { method: 'GET', url, headers: { accept: 'application/json' }, followRedirects: true, signal }, async (ex, ctx) => {
      if (ex.status !== 200) throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
      refuseEncoded(ctx, ex);
      const body = await readCapped(ctx, ex.body, ex.headers, MAX_TAGS_BYTES);
      return { body, link: header(ex.headers, 'link') };
    });
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** `GET /v2/` and a check of the configured credentials, for `regmirror doctor`. */
  probe(): Promise<ProbeReport> {
    return probeRegistry({ base: this.base, transport: this.transport, tokens: this.tokens, credentials: this.credentials });
  }

  private async sizeByRangedGet(repo: RepositoryName, url: URL, signal: AbortSignal | undefined): Promise<{ size: number }> {
    return this.call(repo, { method: 'GET', url, headers: { range: 'bytes=0-0' }, followRedirects: true, signal }, async (ex, ctx) => {
      if (ex.status === 206 || ex.status === 416) {
        discard(ex.body);
        // A 416 carries the unsatisfied-range form with the size: only an empty blob cannot serve byte 0.
        const total = parseContentRange(header(ex.headers, 'content-range'))?.total;
        if (total === undefined || (ex.status === 416 && total !== 0)) throw badResponse(ctx, `${ex.status} without a usable Content-Range`, ex.status);
        return { size: total };
      }
      if (ex.status === 200) {
        discard(ex.body);
        const length = lengthHeader(ex.headers);
        if (length === undefined) throw badResponse(ctx, 'blob size unknown: no Content-Length and Range ignored', 200);
        return { size: length };
      }
      throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
    });
  }

  private url(repo: RepositoryName, rest: string): URL {
    // repo, tag and digest passed oci/'s anchored grammars: nothing here needs escaping.
    return new URL(`${this.base}/v2/${repo}/${rest}`);
  }

  /**
   * One request with the auth dance around it: first try with what earlier challenges taught,
   * one retry after a 401 with a fresh token (or Basic), then a final verdict (checklist 19).
   */
  private async call<T>(repo: string, req: Omit<SendRequest, 'authorization'>, handle: (ex: Exchange, ctx: ErrorContext) => Promise<T>): Promise<T> {
    try {
      return await this.authorizedCall(repo, req, handle);
    } catch (err) {
      // Not found and denied are answers about content; the rest is the upstream or its set-up failing.
      if (err instanceof UpstreamError && err.failure !== 'not-found' && err.failure !== 'denied') this.observer.upstreamFailed?.(this.name, failureLine(err));
      const problem = err instanceof UpstreamError ? err.details.credentials : undefined;
      if (problem === 'rejected' || problem === 'withheld') this.observer.authFailed?.(this.name, problem, (err as UpstreamError).message);
      throw err;
    }
  }

  private async authorizedCall<T>(repo: string, req: Omit<SendRequest, 'authorization'>, handle: (ex: Exchange, ctx: ErrorContext) => Promise<T>): Promise<T> {
    let credential = await this.auth.initial(repo);
    for (let round = 0; round < 2; round++) {
      const outcome = await this.transport.send<Outcome<T>>({ ...req, authorization: credential.header }, async (ex) => {
        // A 401 from a storage host after a redirect is not a challenge for our credentials.
        if (ex.status === 401 && !ex.redirected) {
          discard(ex.body);
          return { kind: 'challenge', challenge: ex.headers['www-authenticate'] };
        }
        return { kind: 'value', value: await handle(ex, { upstream: this.name, method: req.method, url: ex.url }) };
      });
      if (outcome.kind === 'value') {
        // Only an answer to the mirror's own credentials proves them good again (an anonymous one proves nothing).
        if (credential.kind === 'basic' || (credential.kind === 'bearer' && credential.credentialed)) this.observer.authSucceeded?.(this.name);
        return outcome.value;
      }
      const next = round === 0 ? await this.auth.answer(repo, outcome.challenge, credential) : undefined;
      if (next === undefined) break;
      credential = next;
    }
    throw this.finalUnauthorized(req, credential);
  }

  private finalUnauthorized(req: Omit<SendRequest, 'authorization'>, sent: Credential): UpstreamError {
    const where = `${req.method} ${describeUrl(req.url)}: 401`;
    const details = { status: 401 };
    if (sent.kind === 'bearer' && (sent.credentialed || !this.auth.hasCredentials)) {
      // Docker Hub answers 401 for missing and private repositories alike, so as not to disclose
      // which (registry-protocol.md §3.6). The realm issued a token for whatever we could present,
      // so this is "not there, or not for us" — what clients know as "does not exist or may require login".
      return new UpstreamError(this.name, 'not-found', `${where} with a fresh token (missing or private repository)`, details);
    }
    const [why, credentials] =
      sent.kind === 'bearer'
        ? ['the configured credentials were withheld from a token realm outside the upstream domain or not over https', 'withheld' as const]
        : sent.kind === 'basic'
          ? ['the configured credentials were rejected', 'rejected' as const]
          : this.auth.hasCredentials
            ? ['no usable challenge', undefined]
            : ['credentials required and none configured', 'none' as const];
    return new UpstreamError(this.name, 'unauthorized', `${where}: ${why}`, credentials === undefined ? details : { ...details, credentials });
  }
}

/** The client's Accept list as one header; the full modern set when it sent none (§2.2). */
function acceptHeader(accept: readonly string[]): string {
  // Entries come from client headers: only printable ASCII can become a header value.
  const clean = accept.map((a) => a.trim()).filter((a) => a !== '' && /^[\x20-\x7e]+$/.test(a));
  return (clean.length > 0 ? clean : MANIFEST_MEDIA_TYPES).join(', ');
}

/** Encoded bodies would not hash to their digest (checklist 4); we never ask for them. */
function refuseEncoded(ctx: ErrorContext, ex: Exchange): void {
  const encoding = header(ex.headers, 'content-encoding')?.trim().toLowerCase();
  if (encoding === undefined || encoding === '' || encoding === 'identity') return;
  discard(ex.body);
  throw badResponse(ctx, `unrequested Content-Encoding ${JSON.stringify(encoding.slice(0, 32))}`, ex.status);
}

/** Content-Range: `bytes <first>-<last>/<total>`, total possibly `*`, or unsatisfied-range form (RFC 9110 §14.4). */
function parseContentRange(value: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bytes\s+(?:(\d{1,15})-(\d{1,15})|\*)\/(\d{1,15}|\*)\s*$/i.exec(value);
  if (m === null) return undefined;
  const total = m[3] === undefined || m[3] === '*' ? undefined : Number(m[3]);
  if (m[1] === undefined || m[2] === undefined) return total === undefined ? undefined : { start: -1, end: -1, total };
  return { start: Number(m[1]), end: Number(m[2]), total };
}
