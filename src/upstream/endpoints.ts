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

interface Endpoint {
  readonly label: string;
  coolingUntil: number | undefined;
  lastError: { at: number; cause: string } | undefined;
}

/**
 * Which endpoint of one upstream to ask next. An endpoint that failed (no answer, 5xx, 429, bad
 * content) is passed over for a cooling-off period while the others serve; when every one is cooling,
 * the one that failed longest ago is tried rather than failing without asking anyone.
 */
export class EndpointPool {
  private readonly endpoints: Endpoint[];

  constructor(
    private readonly upstream: string,
    urls: readonly URL[],
    private readonly cooldownMs: number,
    private readonly now: () => number,
    private readonly observer: UpstreamObserver,
  ) {
    this.endpoints = urls.map((url) => ({ label: describeUrl(url).replace(/\/$/, ''), coolingUntil: undefined, lastError: undefined }));
    this.endpoints.forEach((_, i) => this.report(i));
  }

  /** The endpoints one request may try, in order. */
  candidates(): number[] {
    const now = this.now();
    const up = this.endpoints.flatMap((e, i) => (e.coolingUntil === undefined || e.coolingUntil <= now ? [i] : []));
    if (up.length > 0) return up;
    let oldest = 0;
    this.endpoints.forEach((e, i) => {
      if ((e.lastError?.at ?? 0) < (this.endpoints[oldest]?.lastError?.at ?? 0)) oldest = i;
    });
    return [oldest];
  }

  /** Passes `index` over for the cooldown, or until upstream's Retry-After if that is later. */
  failed(index: number, cause: string, retryAfterSeconds?: number): void {
    const e = this.endpoints[index];
    if (e === undefined) return;
    const at = this.now();
    e.lastError = { at, cause };
    e.coolingUntil = at + Math.max(this.cooldownMs, (retryAfterSeconds ?? 0) * 1000);
    this.report(index);
  }

  /** An answer came: an endpoint tried while cooling is up again at once. */
  answered(index: number): void {
    const e = this.endpoints[index];
    if (e?.coolingUntil === undefined) return;
    e.coolingUntil = undefined;
    this.report(index);
  }

  private report(index: number): void {
    const e = this.endpoints[index];
    if (e === undefined) return;
    this.observer.endpointState?.({ upstream: this.upstream, index, endpoint: e.label, coolingUntil: e.coolingUntil, lastError: e.lastError });
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
  private readonly clients: readonly HttpUpstream[];
  private readonly pool: EndpointPool;
  /** digest → endpoint index, most recent last. */
  private readonly blobsSent = new Map<string, number>();

  constructor(config: OnlineUpstreamConfig, endpoints: readonly URL[], deps: HttpUpstreamDeps) {
    this.name = config.name;
    this.clients = endpoints.map((url) => new HttpUpstream({ ...config, url, endpoints: [url] }, deps));
    this.pool = new EndpointPool(config.name, endpoints, config.endpointCooldownMs ?? 30_000, deps.now ?? Date.now, deps.observer);
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

  async getBlob(repo: RepositoryName, digest: Digest, options?: { range?: { start: number; end?: number }; signal?: AbortSignal }): Promise<BlobResponse> {
    let from = -1;
    const res = await this.first(async (up, index) => {
      const answer = await up.getBlob(repo, digest, options);
      from = index;
      return answer;
    });
    this.blobsSent.delete(digest);
    this.blobsSent.set(digest, from);
    if (this.blobsSent.size > MAX_REMEMBERED_BLOBS) this.blobsSent.delete(this.blobsSent.keys().next().value ?? '');
    return res;
  }

  /** The blob body last sent for `digest` did not hash to it: that endpoint is not asked again for a while. */
  contentRejected(digest: Digest): void {
    const index = this.blobsSent.get(digest);
    if (index === undefined) return;
    this.blobsSent.delete(digest);
    this.pool.failed(index, `sent a blob body that does not match ${digest}`);
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
    await Promise.all(this.clients.map((c) => c.close()));
  }

  /**
   * The first endpoint's answer that is usable. Not found, unauthorized and denied are answers
   * about content, and a mirror may lack what the origin has: from any endpoint but the last one
   * tried they move on without cooling it. `refuse` names what is wrong with a value that arrived.
   */
  private async first<T>(call: (up: HttpUpstream, index: number) => Promise<T>, refuse?: (value: T) => string | undefined): Promise<T> {
    const order = this.pool.candidates();
    let lastError: unknown;
    for (const [k, index] of order.entries()) {
      const client = this.clients[index];
      if (client === undefined) continue;
      const final = k === order.length - 1;
      try {
        const value = await call(client, index);
        const wrong = refuse?.(value);
        if (wrong === undefined) {
          this.pool.answered(index);
          return value;
        }
        lastError = new UpstreamError(this.name, 'bad-response', `endpoint ${index + 1} ${wrong}`, { reason: wrong });
        this.pool.failed(index, wrong);
      } catch (err) {
        // A caller's abort, or a bug: not the endpoint's failure, and nothing another endpoint would mend.
        if (!(err instanceof UpstreamError)) throw err;
        lastError = err;
        if (err.failure === 'not-found' || err.failure === 'unauthorized' || err.failure === 'denied') {
          this.pool.answered(index);
          if (final) throw err;
          continue;
        }
        this.pool.failed(index, failureLine(err), err.details.retryAfter);
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
