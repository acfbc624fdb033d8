import type { Readable } from 'node:stream';
import type { Digest, PageQuery, Reference, RepositoryName } from '../oci/index.js';
import type { EndpointReport } from './endpoints.js';
import type { CredentialProblem } from './errors.js';

export interface ManifestResponse {
  /** The exact bytes upstream sent (capped at MAX_MANIFEST_BYTES). */
  readonly bytes: Buffer;
  /** Content-Type without parameters. */
  readonly mediaType: string;
  /** Upstream's Docker-Content-Digest, unverified. */
  readonly digestHeader: string | undefined;
}

export interface ManifestHead {
  readonly digest: string | undefined;
  readonly mediaType: string | undefined;
  readonly size: number | undefined;
}

export interface BlobResponse {
  /** 200 for a whole body, 206 when a range was asked and honoured. */
  readonly status: 200 | 206;
  /** Content-Length of this body, when upstream sent one. */
  readonly contentLength: number | undefined;
  readonly body: Readable;
}

export interface TagsPage {
  readonly body: Buffer;
  /** The raw `Link` header, as upstream sent it. */
  readonly link: string | undefined;
}

/**
 * One configured registry. Hides tokens, redirects and retries; never sees client
 * credentials. Failures are thrown as UpstreamError.
 */
export interface Upstream {
  readonly name: string;
  /** Never contacted: every call fails not-found, and what the mirror holds is all there is (no revalidation). */
  readonly offline: boolean;
  getManifest(repo: RepositoryName, ref: Reference, accept: readonly string[], signal?: AbortSignal): Promise<ManifestResponse>;
  headManifest(repo: RepositoryName, ref: Reference, accept: readonly string[], signal?: AbortSignal): Promise<ManifestHead>;
  getBlob(repo: RepositoryName, digest: Digest, options?: { range?: { start: number; end?: number }; signal?: AbortSignal }): Promise<BlobResponse>;
  /** Size of the blob; falls back to a ranged GET when HEAD lacks Content-Length. */
  headBlob(repo: RepositoryName, digest: Digest, signal?: AbortSignal): Promise<{ size: number }>;
  listTags(repo: RepositoryName, query: PageQuery, signal?: AbortSignal): Promise<TagsPage>;
  /**
   * `/v2/<repo>/referrers/<subject>` with upstream's own paging query ('' for the first page),
   * unfiltered; not-found when the registry has no referrers API.
   */
  listReferrers(repo: RepositoryName, subject: Digest, page: string, signal?: AbortSignal): Promise<TagsPage>;
  /** /v2/_catalog (body `{"repositories": [...]}`); many registries refuse it (Docker Hub: 404/401). */
  listCatalog(query: PageQuery, signal?: AbortSignal): Promise<TagsPage>;
  /** The blob body last sent for `digest` failed verification: an upstream with fallbacks asks another endpoint next time. */
  contentRejected?(digest: Digest): void;
  close(): Promise<void>;
}

/** What an upstream reports for metrics; implemented in observability/. */
export interface UpstreamObserver {
  upstreamRequest(event: { upstream: string; method: string; status: number | 'error'; seconds: number }): void;
  rateLimitRemaining(upstream: string, remaining: number): void;
  /** A call failed in a way the operator should see (no answer, 5xx, 429, bad answer, rejected credentials); `cause` is one line. */
  upstreamFailed?(upstream: string, cause: string): void;
  /** An endpoint of an upstream with `endpoints` started cooling off or came back (and once for each at start). */
  endpointState?(report: EndpointReport): void;
  /** The mirror's credentials were refused, or withheld from a realm outside the trust boundary; `detail` names where (no secret). */
  authFailed?(upstream: string, reason: Exclude<CredentialProblem, 'none'>, detail: string): void;
  /** A request carrying the mirror's credentials got its answer: they work (again). */
  authSucceeded?(upstream: string): void;
}
