import type { Logger } from 'pino';
import { MANIFEST_MEDIA_TYPES, nextPageFromLink, OciError, pageOf, parseRepositoryName, type Digest, type PageQuery, type Reference, type RepositoryName, type Tag } from '../oci/index.js';
import type { BlobStore, CreateVerifier } from '../storage/index.js';
import type { Leases } from '../concurrency/index.js';
import type { Upstream } from '../upstream/index.js';
import { BlobService, type BlobReply } from './blobs.js';
import { upstreamBlobSource, type BlobRouting } from './blob-source.js';
import type { ManifestRouting } from './manifest-routing.js';
import { Ingest, type TagOrigin } from './ingest.js';
import { ManifestService, type ManifestReply } from './manifests.js';
import { NotFoundMemory } from './not-found.js';
import { ReferrersService } from './referrers.js';
import type { InFlightDownload, MirrorObserver } from './observer.js';
import type { HeldRepositories, MirrorMetadata, ReferrersReply, RegistryReader, RepoRef, SyncMirror, TagsReply, UpstreamLookup } from './types.js';

export interface MirrorOptions {
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly store: BlobStore;
  readonly metadata: MirrorMetadata;
  readonly observer: MirrorObserver;
  readonly logger: Logger;
  readonly manifestTTLms: number;
  readonly now?: () => number;
  /**
   * Told about every manifest answered, before the client gets it: the blob cache records references
   * for pins and recency, and the metadata store links the repository to what the manifest references.
   */
  readonly manifestServed?: (ref: RepoRef, digest: Digest, mediaType: string, bytes: Buffer | undefined) => Promise<void>;
  /**
   * Content by digest belongs to repositories, not just to an upstream: a blob or a manifest by
   * digest is served to a repository only when linked to it (a manifest of that repository
   * referenced it, or it was fetched for it) or when upstream confirms it in that repository's
   * scope. On with a read policy (`auth`), where repositories of one upstream differ in who may
   * read them; off, an upstream's content is one pool, as before.
   */
  readonly repositoryScoped?: boolean;
  /** How long each upstream's 404s are remembered (`upstreams.<name>.notFoundTTL`); default none. */
  readonly notFoundTTLms?: (upstream: string) => number;
  /** With replicas (src/cluster): a missing blob, or manifest by digest, is fetched from the replica that owns its digest. */
  readonly routing?: BlobRouting & Partial<ManifestRouting>;
  /**
   * Leases on the metadata backend (MetadataStore.leases): replicas sharing a Redis resolve each
   * tag one at a time, so the upstream sees one HEAD per tag per TTL for the whole cluster.
   */
  readonly leases?: Leases;
  /** How downloads that keep nothing (Ingest's pass-through) check their bytes; on the calling thread by default. */
  readonly createVerifier?: CreateVerifier;
}

/** The cache policy: the HTTP layer reads through it, and the sync jobs fill it. */
export class Mirror implements RegistryReader, SyncMirror, HeldRepositories {
  private readonly blobs: BlobService;
  private readonly manifests: ManifestService;
  private readonly referrerLists: ReferrersService;
  private readonly upstreams: UpstreamLookup;
  private readonly metadata: MirrorMetadata;
  private readonly store: BlobStore;

  constructor(options: MirrorOptions) {
    const { upstreams, store, metadata, observer, logger } = options;
    this.metadata = metadata;
    this.store = store;
    this.upstreams = {
      get(name) {
        const upstream = upstreams.get(name);
        // Routing only produces configured names; reaching this is a programming error.
        if (upstream === undefined) throw new Error(`no upstream named ${name}`);
        return upstream;
      },
    };
    const now = options.now ?? Date.now;
    const ingest = new Ingest({ store, metadata, now, ...(options.createVerifier ? { createVerifier: options.createVerifier } : {}) });
    const repositoryScoped = options.repositoryScoped ?? false;
    const ttl = options.notFoundTTLms;
    const notFound = ttl === undefined ? undefined : new NotFoundMemory((name) => (this.upstreams.get(name).offline ? 0 : ttl(name)), now);
    this.blobs = new BlobService({ upstreams: this.upstreams, store, metadata, ingest, observer, logger, source: upstreamBlobSource(this.upstreams), routing: options.routing, repositoryScoped, now, notFound });
    this.manifests = new ManifestService({
      upstreams: this.upstreams,
      store,
      metadata,
      ingest,
      observer,
      logger,
      ttlMs: options.manifestTTLms,
      now,
      served: options.manifestServed,
      repositoryScoped,
      notFound,
      leases: options.leases,
      routing: options.routing,
    });
    this.referrerLists = new ReferrersService({ upstreams: this.upstreams, metadata, logger, ttlMs: options.manifestTTLms, now });
  }

  /** `origin` says who asks for a tag (a client by default): `cache ls` tells a client's last pull from a sync's. */
  manifest(ref: RepoRef, reference: Reference, accept: readonly string[], origin: TagOrigin = 'client'): Promise<ManifestReply> {
    return this.manifests.get(ref, reference, accept, true, origin);
  }

  manifestHead(ref: RepoRef, reference: Reference, accept: readonly string[]): Promise<ManifestReply> {
    return this.manifests.get(ref, reference, accept, false);
  }

  blob(ref: RepoRef, digest: Digest, range: string | undefined, signal?: AbortSignal): Promise<BlobReply> {
    return this.blobs.get(ref, digest, range, signal);
  }

  /** A peer replica's request for a blob it holds this one to own: served here, fetched from upstream if need be, never from a peer. */
  forwardedBlob(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<BlobReply> {
    return this.blobs.get(ref, digest, undefined, signal, false, true);
  }

  /** A peer replica's HEAD of a blob it holds this one to own: from the cache or the upstream's HEAD, never from a peer. */
  forwardedBlobHead(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number }> {
    return this.blobs.head(ref, digest, signal, true);
  }

  /** A peer replica's request for a manifest it holds this one to own: from the store or one upstream GET, never from a peer. */
  forwardedManifest(ref: RepoRef, digest: Digest): Promise<ManifestReply> {
    return this.manifests.get(ref, { kind: 'digest', digest }, MANIFEST_MEDIA_TYPES, true, 'client', true);
  }

  /** Resolves once the blob is verified and committed (sync's path: the same coalesced download as a pull). */
  ensureBlob(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number; downloaded: number }> {
    return this.blobs.ensure(ref, digest, signal);
  }

  blobHead(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number }> {
    return this.blobs.head(ref, digest, signal);
  }

  /**
   * Tag lists are mutable and cheap upstream: passed through, never cached. An offline upstream's
   * tags are the ones held here, and nothing else can be pulled by tag there.
   */
  async tags(ref: RepoRef, query: PageQuery, signal?: AbortSignal): Promise<TagsReply> {
    const upstream = this.upstreams.get(ref.upstream);
    if (upstream.offline) return this.heldTags(ref, query);
    const page = await upstream.listTags(ref.name, query, signal);
    return { body: page.body, next: nextPageFromLink(page.link) };
  }

  private async heldTags(ref: RepoRef, query: PageQuery): Promise<TagsReply> {
    const tags = await this.metadata.listTags(ref.upstream, ref.name);
    if (tags.length === 0) throw new OciError('NAME_UNKNOWN', `no tags of ${ref.name} are held here, and upstream ${ref.upstream} is offline`);
    const { items, next } = pageOf(tags, query);
    return { body: Buffer.from(JSON.stringify({ name: ref.name, tags: items })), next };
  }

  /** Names that are no longer valid (a record from an older version) are left out, never served. */
  async repositories(): Promise<RepoRef[]> {
    const held = await this.metadata.repositories();
    return held.flatMap(({ upstream, repository }) => {
      const name = validName(repository);
      return name === undefined ? [] : [{ upstream, name }];
    });
  }

  /** One page of the upstream's /v2/_catalog, passed through like tags. */
  async catalog(upstream: string, query: PageQuery, signal?: AbortSignal): Promise<TagsReply> {
    const page = await this.upstreams.get(upstream).listCatalog(query, signal);
    return { body: page.body, next: nextPageFromLink(page.link) };
  }

  /** Upstream's referrers list, cached like a tag; its manifests and blobs are pulled by digest like any other. */
  referrers(ref: RepoRef, digest: Digest, artifactType: string | undefined, page: string): Promise<ReferrersReply> {
    return this.referrerLists.get(ref, digest, artifactType, page);
  }

  /** The digest a tag points to locally, without asking upstream (sync's dry run). */
  async cachedTag(ref: RepoRef, tag: string): Promise<Digest | undefined> {
    return (await this.metadata.getTag(ref.upstream, ref.name, tag))?.digest;
  }

  /** What upstream's tag points at now, by HEAD; nothing stored (sync's dry run). */
  upstreamTag(ref: RepoRef, tag: Tag): Promise<Digest> {
    return this.manifests.upstreamTag(ref, tag);
  }

  /** A manifest from the store, or from upstream without storing it (sync's dry run). */
  peekManifest(ref: RepoRef, digest: Digest): Promise<{ bytes: Buffer; mediaType: string; held: boolean }> {
    return this.manifests.peek(ref, digest);
  }

  /** Whether the blob is committed here (sync's dry run counts what it would download). */
  async holdsBlob(digest: Digest): Promise<boolean> {
    return (await this.store.stat(digest)) !== undefined;
  }

  /** Tags recorded locally for a repository (prune compares them with upstream's list). */
  localTags(ref: RepoRef): Promise<string[]> {
    return this.metadata.listTags(ref.upstream, ref.name);
  }

  /** Forgets a tag; its manifest and blobs stay (other tags or digests may use them). */
  forgetTag(ref: RepoRef, tag: string): Promise<void> {
    return this.metadata.deleteTag(ref.upstream, ref.name, tag);
  }

  get downloadsInFlight(): number {
    return this.blobs.inFlight;
  }

  /** Each download running now, with its progress and followers (the status page's in-flight table). */
  downloadsNow(): InFlightDownload[] {
    return this.blobs.downloadsNow();
  }

  /** Waits for the downloads in flight to be committed (or to fail): shutdown drains them. */
  settled(): Promise<void> {
    return this.blobs.settled();
  }
}

function validName(repository: string): RepositoryName | undefined {
  try {
    return parseRepositoryName(repository);
  } catch {
    return undefined;
  }
}
