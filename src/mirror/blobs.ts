import type { Readable } from 'node:stream';
import { OciError, parseRange, type Digest } from '../oci/index.js';
import type { BlobInfo, ByteSpan } from '../storage/index.js';
import { DigestMismatchError, StorageError } from '../storage/index.js';
import { UpstreamError } from '../upstream/index.js';
import { errorSummary } from '../observability/index.js';
import { BlobDownload } from './blob-download.js';
import type { BlobRouting, BlobSource } from './blob-source.js';
import { throwRemembered, tracked, type NotFoundMemory } from './not-found.js';
import type { InFlightDownload } from './observer.js';
import type { RepoRef, ServiceDeps, Source } from './types.js';

export type BlobReply =
  | {
      readonly kind: 'body';
      readonly status: 200 | 206;
      /** Full blob size; undefined only while streaming a cold blob whose upstream sent no length. */
      readonly size: number | undefined;
      readonly span: ByteSpan | undefined;
      readonly body: Readable;
      readonly source: Source;
    }
  | { readonly kind: 'unsatisfiable'; readonly size: number };

interface Deps extends ServiceDeps {
  /** Where missing blobs are fetched from. */
  readonly source: BlobSource;
  /** With replicas: which of them a missing blob is fetched from (the upstream `source` is the fallback). */
  readonly routing?: BlobRouting;
  /** Serve a digest to a repository only once it is known to hold it (MirrorOptions.repositoryScoped). */
  readonly repositoryScoped: boolean;
  readonly now?: () => number;
  /** Upstream's recent 404s, answered again without asking (not for sync's ensure, which always asks). */
  readonly notFound?: NotFoundMemory;
}

/** Blob references in the not-found memory: apart from manifests by digest, whose 404 says MANIFEST_UNKNOWN. */
const blobKey = (digest: Digest): string => `blob:${digest}`;

/** Blob policy: local first, one coalesced download per (upstream, digest) otherwise. */
export class BlobService {
  private readonly downloads = new Map<string, BlobDownload>();

  constructor(private readonly deps: Deps) {}

  /** `forwarded`: a peer replica asks as the digest's owner: the upstream answers a miss, never another peer. */
  async head(ref: RepoRef, digest: Digest, signal?: AbortSignal, forwarded = false): Promise<{ size: number }> {
    const local = await this.local(ref, digest, signal);
    if (local !== undefined) {
      this.deps.observer.cacheLookup('blob', 'hit');
      return { size: local.size };
    }
    const inflight = this.downloads.get(downloadKey(ref, digest));
    // A download for another repository says nothing about this one: upstream's HEAD below does.
    const size = inflight === undefined || !this.sameScope(inflight, ref) ? undefined : (await inflight.ready.catch(() => undefined))?.size;
    if (size !== undefined) return { size };
    // A HEAD never downloads (the reference proxy fetches the whole blob for a HEAD).
    throwRemembered(this.deps.notFound, this.deps.observer, 'blob', ref, blobKey(digest));
    this.deps.observer.cacheLookup('blob', 'miss');
    const upstream = () => tracked(this.deps.notFound, ref, blobKey(digest), () => this.deps.upstreams.get(ref.upstream).headBlob(ref.name, digest, signal));
    const routing = forwarded ? undefined : this.deps.routing;
    return routing?.head === undefined ? upstream() : routing.head(ref, digest, upstream);
  }

  /**
   * `forwarded`: a peer replica asks because it holds this replica to be the digest's owner. One hop
   * only: its download reads from the upstream, never from another peer.
   */
  async get(ref: RepoRef, digest: Digest, rangeHeader: string | undefined, signal?: AbortSignal, retried = false, forwarded = false): Promise<BlobReply> {
    const local = await this.local(ref, digest, signal);
    if (local !== undefined) {
      const reply = await this.serveLocal(local, rangeHeader);
      // Evicted between stat and open: fetched again like any cold blob.
      if (reply !== undefined) {
        this.deps.observer.cacheLookup('blob', 'hit');
        return reply;
      }
    }
    // A download in flight says the blob is there; only a fresh request is answered from memory.
    if (!this.downloads.has(downloadKey(ref, digest))) throwRemembered(this.deps.notFound, this.deps.observer, 'blob', ref, blobKey(digest));
    const { download, joined } = this.download(ref, digest, forwarded);
    if (joined) await this.admit(ref, digest, download, signal);
    this.deps.observer.cacheLookup('blob', joined ? 'coalesced' : 'miss');
    const { writer, kept, size } = await tracked(this.deps.notFound, ref, blobKey(digest), () => download.ready);
    if (!kept) {
      // Nothing lands on disk, so only clients following from the first byte can share it.
      this.forget(ref, digest, download);
      if (writer.bytesWritten > 0 && !retried) return this.get(ref, digest, rangeHeader, signal, true, forwarded);
    }
    if (size === undefined && rangeHeader !== undefined && kept) {
      // Without a total size no exact Content-Range can be written; resuming clients reject a 200,
      // so let the download finish and answer from the verified file.
      const info = await download.done.catch((err: unknown) => {
        // The disk filled under it: nothing to serve from, so ask again (that download streams).
        if (writer.stoppedCaching !== undefined && !retried) return undefined;
        throw err;
      });
      if (info === undefined) return this.get(ref, digest, rangeHeader, signal, true, forwarded);
      const reply = await this.serveLocal(info, rangeHeader);
      if (reply === undefined) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not cached any more; retry`);
      return reply;
    }
    const range = size === undefined ? ({ kind: 'full' } as const) : parseRange(rangeHeader, size);
    if (range.kind === 'unsatisfiable') return { kind: 'unsatisfiable', size: size ?? 0 };
    const span = range.kind === 'partial' ? { start: range.start, end: range.end } : undefined;
    const body = writer.follow(span);
    if (joined && body.destroyed) {
      // The download failed a moment ago and is still cleaning up (its client was cut off and may be
      // back already): start afresh instead of following it into the same error.
      body.on('error', () => {});
      this.forget(ref, digest, download);
      return this.get(ref, digest, rangeHeader, signal, false, forwarded);
    }
    download.followers++;
    body.once('close', () => download.followers--);
    return { kind: 'body', status: span ? 206 : 200, size, span, body, source: joined ? 'inflight' : 'upstream' };
  }

  /**
   * Makes sure the blob is committed for this upstream, starting or joining the same coalesced
   * download a client pull would, without a client stream. `downloaded` counts bytes this call's
   * own download fetched (0 when cached or joined, so two callers never count one download twice).
   */
  async ensure(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number; downloaded: number }> {
    const local = await this.local(ref, digest, signal);
    if (local !== undefined) {
      this.deps.observer.cacheLookup('blob', 'hit');
      return { size: local.size, downloaded: 0 };
    }
    const { download, joined } = this.download(ref, digest);
    if (joined) await this.admit(ref, digest, download, signal);
    this.deps.observer.cacheLookup('blob', joined ? 'coalesced' : 'miss');
    const { kept, size } = await tracked(this.deps.notFound, ref, blobKey(digest), () => download.ready);
    // Over budget or degraded storage: the bytes would land nowhere, and "synced" would be a lie.
    if (!kept) {
      const why = (await this.deps.store.explainRefusal?.(size)) ?? 'the store refused it';
      throw new StorageError(`blob ${digest} cannot be cached: ${why}`);
    }
    const info = await download.done;
    return { size: info.size, downloaded: joined ? 0 : info.size };
  }

  /** The committed blob, if this upstream (and, scoped, this repository) is known to hold it. */
  private async local(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<BlobInfo | undefined> {
    const { store, metadata, ingest } = this.deps;
    const info = await store.stat(digest);
    if (info === undefined) return undefined;
    const record = await metadata.getBlob(digest);
    if (record?.upstreams.includes(ref.upstream) && (await this.linked(ref, digest))) return info;
    // Renamed into place by this upstream's download, which links it a moment later: wait for that
    // rather than ask upstream (a client that just got the last byte may be back already).
    const inflight = this.downloads.get(downloadKey(ref, digest));
    if (inflight !== undefined && (await inflight.done.then(() => true, () => false)) && (await this.linked(ref, digest))) return info;
    // The bytes are here, fetched for another upstream or (scoped) another repository, or the
    // metadata was lost. Serving them to a name that does not hold them would leak content across
    // registries or past the read policy: confirm first, in this repository's scope, then link
    // without downloading again.
    await this.confirm(ref, digest, signal);
    await ingest.link(ref, digest, info.size);
    return info;
  }

  /** Unscoped, any repository of an upstream holding a digest may have it. */
  private async linked(ref: RepoRef, digest: Digest): Promise<boolean> {
    return !this.deps.repositoryScoped || this.deps.metadata.hasLink(ref.upstream, ref.name, digest);
  }

  private sameScope(download: BlobDownload, ref: RepoRef): boolean {
    return !this.deps.repositoryScoped || download.ref.name === ref.name;
  }

  /**
   * Joining a download started for another repository: its upstream answer was for that one. Follow
   * it only if this repository is linked to the digest or upstream confirms it here.
   */
  private async admit(ref: RepoRef, digest: Digest, download: BlobDownload, signal?: AbortSignal): Promise<void> {
    if (this.sameScope(download, ref) || (await this.linked(ref, digest))) return;
    await this.confirm(ref, digest, signal);
    await this.deps.metadata.link(ref.upstream, ref.name, [digest]);
  }

  /** Upstream's HEAD in this repository's scope; throws BLOB_UNKNOWN when upstream does not hold it there. */
  private async confirm(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<void> {
    try {
      await this.deps.upstreams.get(ref.upstream).headBlob(ref.name, digest, signal);
    } catch (err) {
      // Upstream says it does not hold the digest: that is the answer, no GET needed to hear it twice.
      if (err instanceof UpstreamError && err.failure === 'not-found') throw new OciError('BLOB_UNKNOWN', `blob unknown to ${ref.upstream}`);
      throw err;
    }
  }

  /** Undefined when the file went away since stat (evicted). */
  private async serveLocal(info: BlobInfo, rangeHeader: string | undefined): Promise<BlobReply | undefined> {
    const range = parseRange(rangeHeader, info.size);
    if (range.kind === 'unsatisfiable') return { kind: 'unsatisfiable', size: info.size };
    const span = range.kind === 'partial' ? { start: range.start, end: range.end } : undefined;
    const body = await this.deps.store.open(info.digest, span);
    if (body === undefined) return undefined;
    return { kind: 'body', status: span ? 206 : 200, size: info.size, span, body, source: 'cache' };
  }

  private download(ref: RepoRef, digest: Digest, forwarded = false): { download: BlobDownload; joined: boolean } {
    const shared = downloadKey(ref, digest);
    // A peer's request never waits on a download that itself waits on a peer: two replicas whose
    // member lists disagree for a moment would wait on each other. It gets one from upstream.
    const key = forwarded && this.downloads.get(shared)?.viaPeer === true ? `${shared}\u0000direct` : shared;
    const existing = this.downloads.get(key);
    if (existing !== undefined) return { download: existing, joined: true };
    const { ingest, observer, logger, routing } = this.deps;
    const { source, viaPeer } = forwarded || routing === undefined ? { source: this.deps.source, viaPeer: false } : routing.route(ref, digest, this.deps.source);
    const download = new BlobDownload(source, ref, digest, ingest, (result) => {
      if ('info' in result) {
        observer.downloadFinished('committed', result.info.size);
        return;
      }
      observer.downloadFinished('failed', result.bytes);
      if (result.error instanceof DigestMismatchError) {
        observer.digestMismatch('blob');
        source.rejected?.(ref, digest);
      }
      logger.warn({ upstream: ref.upstream, repository: ref.name, digest, error: errorSummary(result.error) }, 'blob download failed; nothing was cached');
    }, this.deps.now);
    download.viaPeer = viaPeer;
    // The entry lives until the blob is committed and linked (clients joining late read the committed
    // file), or until it failed, so a retry starts afresh.
    const forget = () => this.forget(ref, digest, download);
    download.done.then(forget, forget);
    // Failed before upstream answered: the requester gets the error; nothing was downloaded.
    download.ready.catch(() => observer.downloadFinished('failed', 0));
    this.downloads.set(key, download);
    return { download, joined: false };
  }

  private forget(ref: RepoRef, digest: Digest, download: BlobDownload): void {
    const key = downloadKey(ref, digest);
    for (const k of [key, `${key}\u0000direct`]) if (this.downloads.get(k) === download) this.downloads.delete(k);
  }

  /** Upstream downloads running now: the map itself, so no second count can drift from it. */
  get inFlight(): number {
    return this.downloads.size;
  }

  /** The downloads running now, for the status page: read from the map itself, like inFlight. */
  downloadsNow(): InFlightDownload[] {
    return [...this.downloads.values()].map((d) => ({
      upstream: d.ref.upstream,
      repository: d.ref.name,
      digest: d.digest,
      ...d.progress,
      startedAt: d.startedAt,
      followers: d.followers,
    }));
  }

  /** Resolves when every download in flight now has been committed and linked, or has failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.downloads.values()].map((d) => d.done));
  }
}

function downloadKey(ref: RepoRef, digest: Digest): string {
  return `${ref.upstream}\u0000${digest}`;
}
