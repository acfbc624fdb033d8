import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { Leases } from '../concurrency/index.js';

/** Inclusive byte range, already validated against the blob size. */
/**
 * How storage and the cache report what an operator should see (degraded mode, recovery, eviction):
 * a pino-shaped call, so the App passes its logger's methods without storage depending on pino.
 */
export type StorageLog = (level: 'warn' | 'info' | 'debug', fields: Record<string, unknown>, message: string) => void;

export interface ByteSpan {
  readonly start: number;
  readonly end: number;
}

export interface BlobInfo {
  readonly digest: Digest;
  readonly size: number;
}

/**
 * Content-addressed blob files. A blob is visible (stat/open/list) only after its
 * digest was verified by `BlobWriter.commit()`.
 */
export interface BlobStore {
  /** Removes temp files a crash left behind. Called once by `App.start()`. */
  recover(): Promise<{ removedTempFiles: number }>;
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** A stream of the committed blob (or a span of it); undefined if absent. */
  open(digest: Digest, span?: ByteSpan): Promise<Readable | undefined>;
  /**
   * Starts an in-progress write. Undefined means "will not cache this now" (no room in the budget,
   * storage degraded): the caller streams the bytes elsewhere, and nothing lands in the store.
   */
  begin(digest: Digest, expectedSize?: number): Promise<BlobWriter | undefined>;
  /**
   * Why begin() would refuse a blob of this size now, in the config's terms (for sync and import,
   * which must fail and should say why); a store with no limits has nothing to say.
   */
  explainRefusal?(expectedSize: number | undefined): Promise<string | undefined>;
  delete(digest: Digest): Promise<boolean>;
  list(): AsyncIterable<BlobInfo>;
}

/** A store that can name its committed digests from directory listings alone (the budget's start-up reconcile). */
export interface EnumerableBlobStore extends BlobStore {
  digests(): Promise<Digest[]>;
}

export interface BlobWriter {
  readonly digest: Digest;
  /** Bytes written to the temp file so far (what followers may read, minus the held-back tail). */
  readonly bytesWritten: number;
  readonly expectedSize: number | undefined;
  /**
   * Set once a writer that was caching stopped keeping the bytes (the file took no more: a full
   * disk, an I/O error): its followers are still fed, and commit() verifies but keeps nothing.
   * Undefined while the bytes land, and for a writer that never keeps any (a pass-through).
   */
  readonly stoppedCaching: Error | undefined;
  /** Appends a chunk and feeds the hash; resolves once it is in the file (or, caching stopped, with the followers). */
  write(chunk: Buffer): Promise<void>;
  /**
   * A reader of the bytes written so far that waits for more. It never hands out the
   * last byte before `commit()` verified the digest, and it is destroyed with an error
   * when the write is aborted, so no reader ever sees a clean end of wrong bytes.
   * Destroying the reader does not affect the write.
   */
  follow(span?: ByteSpan): Readable;
  /**
   * Verifies size and digest, fsyncs, renames into place. Throws DigestMismatchError / SizeMismatchError
   * in the same turn as its followers fail, before the temp file is gone: the abort() every caller
   * owes a failed write waits for that. Resolves without placing anything when caching stopped.
   */
  commit(): Promise<BlobInfo>;
  /** Deletes the temp file and fails every follower with `reason`. Safe to call twice. */
  abort(reason: Error): Promise<void>;
}

export interface TagRecord {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  /** ms since epoch of the last time upstream confirmed this mapping. */
  readonly fetchedAt: number;
  /**
   * ms since epoch of the last pull by tag by a client, recorded at most once a minute. Records
   * written before `syncedAt` existed counted a sync run's pull here too.
   */
  readonly pulledAt?: number;
  /** ms since epoch of the last sync run that resolved this tag, at most once a minute; absent: never synced. */
  readonly syncedAt?: number;
}

/**
 * One page of a subject's referrers as upstream last answered: the OCI index it sent (unfiltered),
 * or null when it has no referrers API (404), so clients are sent to the tag fallback without
 * asking upstream again within the TTL.
 */
export interface ReferrersRecord {
  readonly body: string | null;
  /** The next page's query string as upstream's Link named it (opaque: referrers paging is not n/last). */
  readonly next?: string;
  /** ms since epoch of the last time upstream answered for this page. */
  readonly fetchedAt: number;
}

/** Referrers pages, per upstream, repository, subject digest and page (the page's query string, '' for the first). */
export interface ReferrersStore {
  getReferrers(upstream: string, repository: string, subject: Digest, page: string): Promise<ReferrersRecord | undefined>;
  setReferrers(upstream: string, repository: string, subject: Digest, page: string, record: ReferrersRecord): Promise<void>;
}

export interface TagEntry {
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string;
  readonly record: TagRecord;
}

export interface DigestEntry<R> {
  readonly digest: Digest;
  readonly record: R;
}

export interface ManifestRecord {
  readonly mediaType: string;
  readonly size: number;
}

export interface BlobRecord {
  readonly size: number;
  /** Upstreams that confirmed they hold this digest: a blob is served for these only. */
  readonly upstreams: readonly string[];
}

/** One repository of one upstream that was seen to hold a digest. */
export interface RepositoryLink {
  readonly upstream: string;
  readonly repository: string;
}

/** Tags by (upstream, repository, tag): the only mutable names the mirror keeps. */
export interface TagStore {
  getTag(upstream: string, repository: string, tag: string): Promise<TagRecord | undefined>;
  setTag(upstream: string, repository: string, tag: string, record: TagRecord): Promise<void>;
  /** The tags recorded for one repository (sync's prune reads them; walks the store: not for hot paths). */
  listTags(upstream: string, repository: string): Promise<string[]>;
  deleteTag(upstream: string, repository: string, tag: string): Promise<void>;
}

/**
 * What content is and where it may be served: manifest records, blob records (per upstream), and
 * links per (upstream, repository, digest). A link says that repository was seen to hold the digest
 * upstream: a manifest referencing it was served there, or upstream confirmed it in that scope.
 */
export interface ContentLinks {
  getManifest(digest: Digest): Promise<ManifestRecord | undefined>;
  setManifest(digest: Digest, record: ManifestRecord): Promise<void>;
  getBlob(digest: Digest): Promise<BlobRecord | undefined>;
  setBlob(digest: Digest, record: BlobRecord): Promise<void>;
  deleteBlob(digest: Digest): Promise<void>;
  /** Records that this repository holds these digests; linking twice is harmless. */
  link(upstream: string, repository: string, digests: readonly Digest[]): Promise<void>;
  hasLink(upstream: string, repository: string, digest: Digest): Promise<boolean>;
  /** Every repository linked to the digest (walks the store: not for hot paths). */
  linkedRepositories(digest: Digest): Promise<RepositoryLink[]>;
}

/** Which repositories the mirror holds anything of: what `/v2/_catalog` lists. */
export interface RepositoryIndex {
  /**
   * Every (upstream, repository) with a tag record or a content link, once each, sorted (walks the
   * store: not for hot paths). A repository pulled by digest only has links and no tag.
   */
  repositories(): Promise<RepositoryLink[]>;
}

/**
 * Enumeration and removal for the cache admin commands. Walks are not snapshots: a record written
 * during one may or may not appear. Records of the wrong shape are skipped, as on reads.
 */
export interface MetadataWalker extends Pick<TagStore, 'deleteTag'>, Pick<ContentLinks, 'deleteBlob'> {
  tags(): AsyncIterable<TagEntry>;
  /** Every (digest, repository) link, in one walk (`cache gc` asks which pinned repositories hold what). */
  links(): AsyncIterable<RepositoryLink & { readonly digest: Digest }>;
  manifests(): AsyncIterable<DigestEntry<ManifestRecord>>;
  blobs(): AsyncIterable<DigestEntry<BlobRecord>>;
  deleteManifest(digest: Digest): Promise<void>;
  /** True when other replicas read these records too (Redis): local deletions then leave them alone. */
  readonly shared: boolean;
}

/** Every record role on one backend (keyv underneath), with its lifecycle. */
export interface MetadataStore extends TagStore, ContentLinks, MetadataWalker, RepositoryIndex, ReferrersStore {
  /** Leases on the same backend: replicas sharing the records share them (src/concurrency/leases.ts). */
  readonly leases: Leases;
  open(): Promise<void>;
  close(): Promise<void>;
}
