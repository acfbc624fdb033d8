import type { Digest, PageQuery, Reference, RepositoryName, Tag } from '../oci/index.js';
import type { Logger } from 'pino';
import type { BlobStore, ContentLinks, ReferrersStore, RepositoryIndex, TagStore } from '../storage/index.js';
import type { Upstream } from '../upstream/index.js';
import type { BlobReply } from './blobs.js';
import type { ManifestReply } from './manifests.js';
import type { Ingest, TagOrigin } from './ingest.js';
import type { MirrorObserver } from './observer.js';

/**
 * Where the bytes of an answer came from, one vocabulary for replies, the access log, metrics and
 * audit: the committed store, a download another request started, this request's own upstream
 * fetch, a stored copy served because upstream could not revalidate it, or upstream's recent 404
 * answered again from memory (no body).
 */
export type Source = 'cache' | 'inflight' | 'upstream' | 'stale' | 'negative';

/** Which registry and repository a request is about, after routing. */
export interface RepoRef {
  readonly upstream: string;
  readonly name: RepositoryName;
}

export interface UpstreamLookup {
  /** The configured upstream; routing guarantees the name exists. */
  get(name: string): Upstream;
}

/** The metadata roles the cache policy uses: tags, what content is held where, and by which repositories. */
export type MirrorMetadata = TagStore & ContentLinks & RepositoryIndex & ReferrersStore;

/** What every cache-policy service is built from. */
export interface ServiceDeps {
  readonly upstreams: UpstreamLookup;
  readonly store: BlobStore;
  readonly metadata: MirrorMetadata;
  /** How fetched content enters the store and the records (verify → commit → link → tag). */
  readonly ingest: Ingest;
  readonly observer: MirrorObserver;
  readonly logger: Logger;
}

export interface TagsReply {
  readonly body: Buffer;
  /** Where the next page starts, already read out of upstream's Link header. */
  readonly next: PageQuery | undefined;
}

export interface ReferrersReply {
  /** An OCI image index listing the referrers. */
  readonly body: Buffer;
  /** Whether the list was filtered by artifactType (OCI-Filters-Applied). */
  readonly filtered: boolean;
  /** Upstream's query for the next page, when there is one. */
  readonly next: string | undefined;
}

/**
 * What the registry API serves to clients. An interface so a decorator (a policy gate, a referrers
 * proxy) can wrap the mirror and be served in its place, while reading through the undecorated one.
 */
export interface RegistryReader {
  /** The manifest with its bytes. */
  manifest(ref: RepoRef, reference: Reference, accept: readonly string[]): Promise<ManifestReply>;
  /** The manifest's digest, media type and size, without its bytes. */
  manifestHead(ref: RepoRef, reference: Reference, accept: readonly string[]): Promise<ManifestReply>;
  blob(ref: RepoRef, digest: Digest, range: string | undefined, signal?: AbortSignal): Promise<BlobReply>;
  blobHead(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number }>;
  tags(ref: RepoRef, query: PageQuery, signal?: AbortSignal): Promise<TagsReply>;
  /** One page of the subject's referrers (`page`: upstream's paging query, '' for the first). */
  referrers(ref: RepoRef, digest: Digest, artifactType: string | undefined, page: string): Promise<ReferrersReply>;
}

/** What `/v2/_catalog` lists: the repositories held here, by upstream and the name sent there. */
export interface HeldRepositories {
  /** Sorted by upstream, then repository. */
  repositories(): Promise<RepoRef[]>;
}

/** What sync needs from the mirror: the pull path for content, plus the local tag records prune compares. */
export interface SyncMirror {
  manifest(ref: RepoRef, reference: Reference, accept: readonly string[], origin?: TagOrigin): Promise<ManifestReply>;
  tags(ref: RepoRef, query: PageQuery, signal?: AbortSignal): Promise<TagsReply>;
  catalog(upstream: string, query: PageQuery, signal?: AbortSignal): Promise<TagsReply>;
  /** Resolves once the blob is verified and committed; `downloaded` counts bytes this call fetched. */
  ensureBlob(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number; downloaded: number }>;
  cachedTag(ref: RepoRef, tag: string): Promise<Digest | undefined>;
  /** The subject's referrers (signatures, SBOMs), cached like a tag: `referrers: true` entries mirror them too. */
  referrers(ref: RepoRef, digest: Digest, artifactType: string | undefined, page: string): Promise<ReferrersReply>;
  /** The dry run's reads: upstream's tag by HEAD, manifests held or fetched unstored, blobs held. */
  upstreamTag(ref: RepoRef, tag: Tag): Promise<Digest>;
  peekManifest(ref: RepoRef, digest: Digest): Promise<{ bytes: Buffer; mediaType: string; held: boolean }>;
  holdsBlob(digest: Digest): Promise<boolean>;
  localTags(ref: RepoRef): Promise<string[]>;
  forgetTag(ref: RepoRef, tag: string): Promise<void>;
}
