import { LRUCache } from 'lru-cache';
import {
  acceptsMediaType,
  digestAlgorithm,
  isDigestString,
  MANIFEST_MEDIA_TYPES,
  OciError,
  parseDigest,
  parseManifest,
  type Digest,
  type Reference,
  type Tag,
} from '../oci/index.js';
import { DigestMismatchError } from '../storage/index.js';
import { UpstreamError, type ManifestResponse } from '../upstream/index.js';
import { errorSummary } from '../observability/index.js';
import { Coalescer, type Leases } from '../concurrency/index.js';
import type { TagOrigin } from './ingest.js';
import type { ManifestRouting, PeerManifest } from './manifest-routing.js';
import { touchTag } from './tag-touch.js';
import { throwRemembered, tracked, type NotFoundMemory } from './not-found.js';
import type { RepoRef, ServiceDeps, Source } from './types.js';

export interface ManifestReply {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  /** Present for GET; a HEAD is answered from metadata alone. */
  readonly bytes: Buffer | undefined;
  /** Where the answer came from: a stored (or revalidated) record, this request's fetch, one another request started, or a stale record. */
  readonly source?: Source;
}

interface Deps extends ServiceDeps {
  readonly ttlMs: number;
  readonly now: () => number;
  /** Told about every manifest answered (pins, cache recency and repository links follow it); answered once it resolves. */
  readonly served?: (ref: RepoRef, digest: Digest, mediaType: string, bytes: Buffer | undefined) => Promise<void>;
  /** A manifest by digest only for a repository linked to it, else upstream is asked (MirrorOptions.repositoryScoped). */
  readonly repositoryScoped?: boolean;
  /** Upstream's recent 404s, answered again without asking (not for sync, which always asks). */
  readonly notFound?: NotFoundMemory;
  /** Replicas sharing the metadata (Redis) resolve a tag one at a time through these (MirrorOptions.leases). */
  readonly leases?: Leases;
  /** With replicas (src/cluster): a manifest missing here by digest is asked of the replica that owns it. */
  readonly routing?: Partial<ManifestRouting>;
}

interface Entry {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
}

/** An entry as one caller got it. */
interface Answer extends Entry {
  readonly source: Source;
}

/** A fetched manifest; `kept` false when the store would not cache it now (nothing recorded, not even its tag). */
interface Fetched extends Entry {
  readonly kept: boolean;
}

/**
 * How long one replica may take to resolve a tag (a HEAD, perhaps a GET) before another may: a
 * holder that died frees the tag after this. The others look for its answer every poll.
 */
const TAG_LEASE_MS = 10_000;
const TAG_LEASE_POLL_MS = 50;

/** Manifests are small and hot (every pull starts with one): keep recent ones in memory. */
const MEMORY_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Manifest policy: by digest, cached for good and verified; by tag, trusted for the TTL, then
 * revalidated with a HEAD (which Docker Hub does not count as a pull), and served stale when the
 * upstream cannot answer.
 */
export class ManifestService {
  private readonly fetches = new Coalescer<Answer>();
  private readonly gets = new Coalescer<Fetched>();
  private readonly memory = new LRUCache<string, Buffer>({ maxSize: MEMORY_CACHE_BYTES, sizeCalculation: (b) => b.length || 1 });

  constructor(private readonly deps: Deps) {}

  /**
   * No client AbortSignal reaches upstream from here: fetches are shared by concurrent clients and a
   * manifest is small, so one client leaving must not fail the others (upstream timeouts bound it).
   */
  async get(ref: RepoRef, reference: Reference, accept: readonly string[], withBody: boolean, origin: TagOrigin = 'client', forwarded = false): Promise<ManifestReply> {
    const { digest, mediaType, size, source } =
      reference.kind === 'digest' ? await this.byDigest(ref, reference.digest, origin, forwarded) : await this.byTag(ref, reference.tag, accept, origin);
    const bytes = withBody ? await this.bytes(ref, { digest, mediaType, size }, forwarded) : undefined;
    await this.deps.served?.(ref, digest, mediaType, bytes);
    return { digest, mediaType, size, bytes, source };
  }

  private async byDigest(ref: RepoRef, digest: Digest, origin: TagOrigin, forwarded: boolean): Promise<Answer> {
    const known = await this.cached(ref, digest);
    // Scoped, a digest cached for another repository is fetched in this one's scope: upstream's
    // answer (a 404 for a digest the repository does not hold) is the authority, and a hit links it.
    if (known !== undefined && (this.deps.repositoryScoped !== true || (await this.deps.metadata.hasLink(ref.upstream, ref.name, digest)))) {
      this.deps.observer.cacheLookup('manifest', 'hit');
      return { ...known, source: 'cache' };
    }
    this.recall(ref, digest, origin);
    this.deps.observer.cacheLookup('manifest', 'miss');
    return this.tracked(ref, digest, () => this.fetchDigest(ref, digest, forwarded));
  }

  /** Throws upstream's remembered 404 for this reference, counted as a `negative` lookup; sync always asks upstream. */
  private recall(ref: RepoRef, reference: string, origin: TagOrigin): void {
    if (origin !== 'sync') throwRemembered(this.deps.notFound, this.deps.observer, 'manifest', ref, reference);
  }

  private tracked<T>(ref: RepoRef, reference: string, work: () => Promise<T>): Promise<T> {
    return tracked(this.deps.notFound, ref, reference, work);
  }

  private async byTag(ref: RepoRef, tag: Tag, accept: readonly string[], origin: TagOrigin): Promise<Answer> {
    const { metadata, observer, logger, now, ttlMs, upstreams } = this.deps;
    const record = await metadata.getTag(ref.upstream, ref.name, tag);
    if (record !== undefined && !acceptsMediaType(accept, record.mediaType)) {
      // A cached index must not reach a client that cannot read one (and vice versa): ask upstream
      // with the client's own Accept and leave the tag's richest answer in place.
      observer.cacheLookup('manifest', 'miss');
      return this.fetch(ref, { kind: 'tag', tag }, accept, false);
    }
    if (record === undefined) {
      this.recall(ref, tag, origin);
      observer.cacheLookup('manifest', 'miss');
      const cold = () => this.tracked(ref, tag, () => this.coldTag(ref, tag, origin));
      if (this.deps.leases?.shared !== true) return cold();
      const { promise, joined } = this.fetches.run(`cold\u0000${ref.upstream}\u0000${ref.name}\u0000${tag}`, () => this.underLease(ref, tag, accept, origin, cold));
      const entry = await promise;
      return joined && entry.source === 'upstream' ? { ...entry, source: 'inflight' } : entry;
    }
    // Nothing can move an offline upstream's tag: what was imported or cached is the answer for good.
    if (now() - record.fetchedAt < ttlMs || upstreams.get(ref.upstream).offline) {
      observer.cacheLookup('manifest', 'hit');
      await touchTag(this.deps, ref, tag, record, origin);
      return { ...record, source: 'cache' };
    }
    // A tag upstream stopped having is 404 until it returns, remembered like one never held.
    this.recall(ref, tag, origin);
    const key = `revalidate\u0000${ref.upstream}\u0000${ref.name}\u0000${tag}`;
    try {
      const { promise, joined } = this.fetches.run(key, () => this.underLease(ref, tag, accept, origin, async (): Promise<Answer> => {
        const head = await upstreams.get(ref.upstream).headManifest(ref.name, { kind: 'tag', tag }, MANIFEST_MEDIA_TYPES);
        if (head.digest === record.digest) {
          await this.deps.ingest.tag(ref, tag, record, origin);
          return { ...record, source: 'cache' };
        }
        const next = head.digest !== undefined && isDigestString(head.digest) ? parseDigest(head.digest) : undefined;
        // Fetch the new manifest by digest when HEAD named one, so what we store is what HEAD promised.
        return next !== undefined
          ? this.fetchTagTarget(ref, tag, next, origin)
          : this.fetch(ref, { kind: 'tag', tag }, MANIFEST_MEDIA_TYPES, true, origin);
      }));
      const entry = await this.tracked(ref, tag, () => promise);
      observer.cacheLookup('manifest', entry.digest === record.digest ? 'hit' : 'miss');
      return joined && entry.source === 'upstream' ? { ...entry, source: 'inflight' } : entry;
    } catch (err) {
      if (err instanceof UpstreamError && err.failure !== 'not-found') {
        observer.cacheLookup('manifest', 'stale');
        logger.warn({ upstream: ref.upstream, repository: ref.name, tag, error: errorSummary(err) }, 'upstream could not revalidate tag; serving the cached manifest');
        await touchTag(this.deps, ref, tag, record, origin);
        return { ...record, source: 'stale' };
      }
      throw err;
    }
  }

  /**
   * With replicas on one Redis: resolves the tag upstream only while holding its lease, so the
   * cluster sends one HEAD (or GET) per tag per TTL. Without the lease, the holder's answer is read
   * from the shared record as soon as it lands; a holder that died frees the lease when it
   * expires, and a holder slower than its lease is not waited for (correctness over savings).
   */
  private async underLease(ref: RepoRef, tag: Tag, accept: readonly string[], origin: TagOrigin, work: () => Promise<Answer>): Promise<Answer> {
    const { leases, logger } = this.deps;
    if (leases?.shared !== true) return work();
    const key = `tag:${ref.upstream}/${ref.name}:${tag}`;
    const deadline = performance.now() + TAG_LEASE_MS + 1000;
    for (;;) {
      let lease;
      try {
        lease = await leases.tryAcquire(key, TAG_LEASE_MS);
      } catch (err) {
        logger.debug({ upstream: ref.upstream, repository: ref.name, tag, error: errorSummary(err) }, 'tag lease unavailable; resolving the tag here');
        return work();
      }
      try {
        // Read after taking the lease too: a holder may have finished between our read and now.
        const done = await this.resolvedElsewhere(ref, tag, accept, origin);
        if (done !== undefined) return done;
        if (lease !== undefined || performance.now() >= deadline) return await work();
      } finally {
        await lease?.release().catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, TAG_LEASE_POLL_MS));
    }
  }

  /** The tag as another replica just resolved it: a record within the TTL. */
  private async resolvedElsewhere(ref: RepoRef, tag: Tag, accept: readonly string[], origin: TagOrigin): Promise<Answer | undefined> {
    const record = await this.deps.metadata.getTag(ref.upstream, ref.name, tag);
    if (record === undefined || this.deps.now() - record.fetchedAt >= this.deps.ttlMs) return undefined;
    // Resolved for a client that reads another media type: ask with this client's own Accept, as a local hit would.
    if (!acceptsMediaType(accept, record.mediaType)) return this.fetch(ref, { kind: 'tag', tag }, accept, false);
    await touchTag(this.deps, ref, tag, record, origin);
    return { ...record, source: 'cache' };
  }

  private async fetchTagTarget(ref: RepoRef, tag: Tag, digest: Digest, origin: TagOrigin): Promise<Answer> {
    const cached = await this.cached(ref, digest);
    // Upstream just said this repository's tag points at it: the repository holds it, wherever the
    // bytes were first fetched for (a client's next GET by digest needs no upstream round trip).
    if (cached !== undefined) await this.deps.ingest.link(ref, digest, cached.size);
    const entry = cached !== undefined ? { ...cached, kept: true, source: 'cache' as const } : await this.fetchDigest(ref, digest);
    if (entry.kept) await this.deps.ingest.tag(ref, tag, entry, origin);
    return entry;
  }

  /**
   * A tag held nowhere. Alone: one GET by tag. With other replicas: a HEAD (which Docker Hub does
   * not count as a pull), then the manifest by digest from its owner, so the cluster GETs each
   * manifest once whichever replica resolved the tag.
   */
  private async coldTag(ref: RepoRef, tag: Tag, origin: TagOrigin): Promise<Answer> {
    const byTag = () => this.fetch(ref, { kind: 'tag', tag }, MANIFEST_MEDIA_TYPES, true, origin);
    if (this.deps.routing?.clustered?.() !== true) return byTag();
    const head = await this.deps.upstreams.get(ref.upstream).headManifest(ref.name, { kind: 'tag', tag }, MANIFEST_MEDIA_TYPES);
    return head.digest !== undefined && isDigestString(head.digest) ? this.fetchTagTarget(ref, tag, parseDigest(head.digest), origin) : byTag();
  }

  /** By digest: from the replica that owns it when another does, unless a peer asked (one hop only). */
  private fetchDigest(ref: RepoRef, digest: Digest, forwarded = false): Promise<Fetched & Answer> {
    const peer = forwarded ? undefined : this.deps.routing?.routeManifest?.(ref, digest);
    return this.fetch(ref, { kind: 'digest', digest }, MANIFEST_MEDIA_TYPES, true, 'client', peer);
  }

  /**
   * One upstream GET per (upstream, repository, reference, accept) at a time; stores and verifies.
   * `peer`: the owner's copy is asked first (undefined when it could not answer right). A peer's
   * request never joins a fetch that waits on a peer: replicas that disagree on the owner for a
   * moment would wait on each other.
   */
  private async fetch(ref: RepoRef, reference: Reference, accept: readonly string[], recordTag = true, origin: TagOrigin = 'client', peer?: () => Promise<PeerManifest | undefined>): Promise<Fetched & Answer> {
    const refString = reference.kind === 'tag' ? reference.tag : reference.digest;
    const key = `get\u0000${ref.upstream}\u0000${ref.name}\u0000${refString}\u0000${accept.join(',')}${peer === undefined ? '' : '\u0000peer'}`;
    const { promise, joined } = this.gets.run(key, async () => {
      const response = (await peer?.()) ?? (await this.deps.upstreams.get(ref.upstream).getManifest(ref.name, reference, accept));
      const fetched = await this.store(ref, response, reference.kind === 'digest' ? reference.digest : undefined);
      if (reference.kind === 'tag' && recordTag && fetched.kept) await this.deps.ingest.tag(ref, reference.tag, fetched, origin);
      return fetched;
    });
    return { ...(await promise), source: joined ? 'inflight' : 'upstream' };
  }

  /**
   * Verifies and stores upstream's exact bytes; the digest served is always one we checked or
   * computed. Bytes the store would not keep now are served from memory and recorded nowhere.
   */
  private async store(ref: RepoRef, response: PeerManifest & Partial<Pick<ManifestResponse, 'digestHeader'>>, expected: Digest | undefined): Promise<Fetched> {
    const { bytes } = response;
    const header = response.digestHeader !== undefined && isDigestString(response.digestHeader) ? parseDigest(response.digestHeader) : undefined;
    const claimed = expected ?? header;
    let digest: Digest;
    try {
      digest = await this.deps.ingest.verify(bytes, claimed, claimed !== undefined ? digestAlgorithm(claimed) : 'sha256');
    } catch (err) {
      if (!(err instanceof DigestMismatchError)) throw err;
      this.deps.observer.digestMismatch('manifest');
      const why = `manifest digest ${err.actual} does not match ${claimed}`;
      this.deps.logger.warn({ upstream: ref.upstream, repository: ref.name, digest: claimed, actual: err.actual }, 'manifest digest mismatch; nothing was cached');
      throw new UpstreamError(ref.upstream, 'bad-response', why, { reason: why });
    }
    let mediaType: string;
    try {
      const parsed = parseManifest(bytes, response.mediaType);
      mediaType = parsed.mediaType;
    } catch (err) {
      const why = `an invalid manifest: ${(err as Error).message}`;
      throw new UpstreamError(ref.upstream, 'bad-response', `upstream sent ${why}`, { reason: why });
    }
    const kept = await this.deps.ingest.content(ref, digest, mediaType, bytes);
    this.memory.set(digest, bytes);
    return { digest, mediaType, size: bytes.length, kept };
  }

  /** A manifest this upstream is known to hold, from metadata (no bytes read). */
  private async cached(ref: RepoRef, digest: Digest): Promise<Entry | undefined> {
    const [manifest, blob] = await Promise.all([this.deps.metadata.getManifest(digest), this.deps.metadata.getBlob(digest)]);
    if (manifest === undefined || !blob?.upstreams.includes(ref.upstream)) return undefined;
    return { digest, mediaType: manifest.mediaType, size: manifest.size };
  }

  /**
   * Sync's dry run: the digest upstream's tag points at now, by HEAD (which Docker Hub does not
   * count as a pull); only a registry that leaves the digest out of its HEAD answer is asked a GET.
   * Nothing is stored or recorded.
   */
  async upstreamTag(ref: RepoRef, tag: Tag): Promise<Digest> {
    const upstream = this.deps.upstreams.get(ref.upstream);
    const head = await upstream.headManifest(ref.name, { kind: 'tag', tag }, MANIFEST_MEDIA_TYPES);
    if (head.digest !== undefined && isDigestString(head.digest)) return parseDigest(head.digest);
    const response = await upstream.getManifest(ref.name, { kind: 'tag', tag }, MANIFEST_MEDIA_TYPES);
    return this.deps.ingest.verify(response.bytes, undefined, 'sha256');
  }

  /** A manifest's bytes from the store when held, else a verified upstream GET that is not stored (sync's dry run). */
  async peek(ref: RepoRef, digest: Digest): Promise<{ bytes: Buffer; mediaType: string; held: boolean }> {
    const record = await this.deps.metadata.getManifest(digest);
    const stored = record === undefined ? undefined : await this.stored(digest);
    if (record !== undefined && stored !== undefined) return { bytes: stored, mediaType: record.mediaType, held: true };
    const response = await this.deps.upstreams.get(ref.upstream).getManifest(ref.name, { kind: 'digest', digest }, MANIFEST_MEDIA_TYPES);
    await this.deps.ingest.verify(response.bytes, digest, digestAlgorithm(digest));
    return { bytes: response.bytes, mediaType: response.mediaType, held: false };
  }

  private async stored(digest: Digest): Promise<Buffer | undefined> {
    const hot = this.memory.get(digest);
    if (hot !== undefined) return hot;
    const stream = await this.deps.store.open(digest);
    if (stream === undefined) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    this.memory.set(digest, bytes);
    return bytes;
  }

  private async bytes(ref: RepoRef, entry: Entry, forwarded: boolean): Promise<Buffer> {
    const bytes = await this.stored(entry.digest);
    if (bytes !== undefined) return bytes;
    // Metadata outlived the file (evicted, removed by hand, or written by another replica sharing it): fetch it by digest.
    await this.fetchDigest(ref, entry.digest, forwarded);
    const again = this.memory.get(entry.digest);
    if (again === undefined) throw new OciError('MANIFEST_UNKNOWN', `manifest ${entry.digest} is not available`);
    return again;
  }
}
