import type { OnlineUpstreamConfig } from '../config/index.js';
import { computeDigest, digestAlgorithm, isDigestString, parseDigest, type Digest, type PageQuery, type Reference, type RepositoryName } from '../oci/index.js';
import { failureLine, UpstreamError } from './errors.js';
import { HttpUpstream, type HttpUpstreamDeps } from './http-upstream.js';
import { describeUrl } from './redact.js';
import type { BlobResponse, ManifestHead, ManifestResponse, TagsPage, Upstream, UpstreamObserver } from './types.js';

/** What an endpoint's state looks like to the observer: a snapshot after every change. */
export interface EndpointReport {
  readonly upstream: string;
  /** Position in the configured order, from 0. */
  readonly index: number;
  /** Origin and path (config refuses credentials and queries in it). */
  readonly endpoint: string;
  /** ms since epoch; undefined while it never failed (or recovered). */
  readonly coolingUntil: number | undefined;
  readonly lastError: { readonly at: number; readonly cause: string } | undefined;
}

/** Blob digests remembered with the endpoint that sent them, so a body that failed its digest is charged to it. */
const MAX_REMEMBERED_BLOBS = 1000;
/** `endpointCooldown`'s default, for configs built without config/load.ts. */
const DEFAULT_COOLDOWN_MS = 30_000;

/** One endpoint as the pool keeps it: what it serves with, and since when it is passed over. */
export interface Endpoint<T> {
  readonly index: number;
  readonly label: string;
  readonly client: T;
  coolingUntil: number | undefined;
  lastError: { at: number; cause: string } | undefined;
}

/**
 * Which endpoint of one upstream to ask next. An endpoint that failed (no answer, 5xx, 429, bad
 * content) is passed over for a cooling-off period while the others serve; when every one is cooling,
 * the one that failed longest ago is tried rather than failing without asking anyone.
 */
export class EndpointPool<T> {
  private readonly endpoints: readonly Endpoint<T>[];

  constructor(
    private readonly upstream: string,
    endpoints: readonly { readonly url: URL; readonly client: T }[],
    private readonly cooldownMs: number,
    private readonly now: () => number,
    private readonly observer: UpstreamObserver,
  ) {
    this.endpoints = endpoints.map(({ url, client }, index) => ({ index, label: describeUrl(url).replace(/\/$/, ''), client, coolingUntil: undefined, lastError: undefined }));
    for (const e of this.endpoints) this.report(e);
  }

  get all(): readonly Endpoint<T>[] {
    return this.endpoints;
  }

  /** The endpoints one request may try, in order. */
  candidates(): Endpoint<T>[] {
    const now = this.now();
    const up = this.endpoints.filter((e) => e.coolingUntil === undefined || e.coolingUntil <= now);
    if (up.length > 0) return up;
    // Every one is cooling, so every one has failed: the earliest failure is the likeliest mended.
    return [this.endpoints.reduce((oldest, e) => ((e.lastError?.at ?? 0) < (oldest.lastError?.at ?? 0) ? e : oldest))];
  }

  /** Passes `e` over for the cooldown, or until upstream's Retry-After if that is later. */
  failed(e: Endpoint<T>, cause: string, retryAfterSeconds = 0): void {
    const at = this.now();
    e.lastError = { at, cause };
    e.coolingUntil = at + Math.max(this.cooldownMs, retryAfterSeconds * 1000);
    this.report(e);
  }

  /** An answer came: an endpoint tried while cooling is up again at once. */
  answered(e: Endpoint<T>): void {
    if (e.coolingUntil === undefined) return;
    e.coolingUntil = undefined;
    this.report(e);
  }

  private report(e: Endpoint<T>): void {
    this.observer.endpointState?.({ upstream: this.upstream, index: e.index, endpoint: e.label, coolingUntil: e.coolingUntil, lastError: e.lastError });
  }
}

/**
 * One upstream name served by several endpoints (`upstreams.<name>.endpoints`), each a full client
 * of its own: its own connections, token cache and realm trust boundary (credentials go only to a
 * realm within that endpoint's domain). Content is checked as from one endpoint — manifests here,
 * before they are handed on, blobs by the mirror's verifier, which reports a mismatch back through
 * `contentRejected` — so an endpoint that sends wrong bytes only ever costs a retry.
 */
export class FallbackUpstream implements Upstream {
  readonly name: string;
  readonly offline = false;
  private readonly pool: EndpointPool<HttpUpstream>;
  /** digest → the endpoint that sent its body, most recent last. */
  private readonly blobsSent = new Map<string, Endpoint<HttpUpstream>>();

  constructor(config: OnlineUpstreamConfig, endpoints: readonly URL[], deps: HttpUpstreamDeps) {
    this.name = config.name;
    const clients = endpoints.map((url) => ({ url, client: new HttpUpstream({ ...config, url, endpoints: [url] }, deps) }));
    this.pool = new EndpointPool(config.name, clients, config.endpointCooldownMs ?? DEFAULT_COOLDOWN_MS, deps.now ?? Date.now, deps.observer);
  }

  getManifest(repo: RepositoryName, ref: Reference, accept: readonly string[], signal?: AbortSignal): Promise<ManifestResponse> {
    return this.first((up) => up.getManifest(repo, ref, accept, signal), (res) => manifestMismatch(ref, res));
  }

  headManifest(repo: RepositoryName, ref: Reference, accept: readonly string[], signal?: AbortSignal): Promise<ManifestHead> {
    return this.first(
      (up) => up.headManifest(repo, ref, accept, signal),
      (head) => (ref.kind === 'digest' && head.digest !== undefined && head.digest !== ref.digest ? `answered HEAD ${ref.digest} with ${head.digest.slice(0, 80)}` : undefined),
    );
  }

  getBlob(repo: RepositoryName, digest: Digest, options?: { range?: { start: number; end?: number }; signal?: AbortSignal }): Promise<BlobResponse> {
    return this.first(
      (up) => up.getBlob(repo, digest, options),
      (_res, from) => {
        this.blobsSent.delete(digest);
        this.blobsSent.set(digest, from);
        if (this.blobsSent.size > MAX_REMEMBERED_BLOBS) this.blobsSent.delete(this.blobsSent.keys().next().value ?? '');
        return undefined;
      },
    );
  }

  /** The blob body last sent for `digest` did not hash to it: that endpoint is not asked again for a while. */
  contentRejected(digest: Digest): void {
    const from = this.blobsSent.get(digest);
    if (from === undefined) return;
    this.blobsSent.delete(digest);
    this.pool.failed(from, `sent a blob body that does not match ${digest}`);
  }

  headBlob(repo: RepositoryName, digest: Digest, signal?: AbortSignal): Promise<{ size: number }> {
    return this.first((up) => up.headBlob(repo, digest, signal));
  }

  listTags(repo: RepositoryName, query: PageQuery, signal?: AbortSignal): Promise<TagsPage> {
    return this.first((up) => up.listTags(repo, query, signal));
  }

  listReferrers(repo: RepositoryName, subject: Digest, page: string, signal?: AbortSignal): Promise<TagsPage> {
    return this.first((up) => up.listReferrers(repo, subject, page, signal));
  }

  listCatalog(query: PageQuery, signal?: AbortSignal): Promise<TagsPage> {
    return this.first((up) => up.listCatalog(query, signal));
  }

  async close(): Promise<void> {
    await Promise.all(this.pool.all.map((e) => e.client.close()));
  }

  /**
   * The first endpoint's answer that is usable. Not found, unauthorized and denied are answers
   * about content, and a mirror may lack what the origin has: from any endpoint but the last one
   * tried they move on without cooling it. `inspect` sees each value that arrived and where from,
   * and names what is wrong with it, if anything.
   */
  private async first<T>(call: (up: HttpUpstream) => Promise<T>, inspect: (value: T, from: Endpoint<HttpUpstream>) => string | undefined = () => undefined): Promise<T> {
    const order = this.pool.candidates();
    let lastError: unknown;
    for (const [k, endpoint] of order.entries()) {
      try {
        const value = await call(endpoint.client);
        const wrong = inspect(value, endpoint);
        if (wrong === undefined) {
          this.pool.answered(endpoint);
          return value;
        }
        lastError = new UpstreamError(this.name, 'bad-response', `endpoint ${endpoint.index + 1} ${wrong}`, { reason: wrong });
        this.pool.failed(endpoint, wrong);
      } catch (err) {
        // A caller's abort, or a bug: not the endpoint's failure, and nothing another endpoint would mend.
        if (!(err instanceof UpstreamError)) throw err;
        lastError = err;
        if (err.failure === 'not-found' || err.failure === 'unauthorized' || err.failure === 'denied') {
          this.pool.answered(endpoint);
          if (k === order.length - 1) throw err;
          continue;
        }
        this.pool.failed(endpoint, failureLine(err), err.details.retryAfter);
      }
    }
    throw lastError;
  }
}

/** Why a manifest cannot be the one asked for: bytes that do not hash to the digest asked or announced. */
function manifestMismatch(ref: Reference, res: ManifestResponse): string | undefined {
  const header = res.digestHeader !== undefined && isDigestString(res.digestHeader) ? parseDigest(res.digestHeader) : undefined;
  const claimed = ref.kind === 'digest' ? ref.digest : header;
  if (claimed === undefined) return undefined;
  const actual = computeDigest(res.bytes, digestAlgorithm(claimed));
  return actual === claimed ? undefined : `sent a manifest that hashes to ${actual}, not ${claimed}`;
}

/** The client for one configured registry: one endpoint as it always was, several behind a FallbackUpstream. */
export function onlineUpstream(config: OnlineUpstreamConfig, deps: HttpUpstreamDeps): Upstream {
  const endpoints = config.endpoints ?? [config.url];
  return endpoints.length > 1 ? new FallbackUpstream(config, endpoints, deps) : new HttpUpstream(config, deps);
}
