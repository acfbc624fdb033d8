import { computeDigest, type Digest, type DigestAlgorithm } from '../oci/index.js';
import { createVerifier, type BlobStore, type BlobWriter, type CreateVerifier } from '../storage/index.js';
import { PassThroughWriter } from './pass-through-writer.js';
import type { MirrorMetadata, RepoRef } from './types.js';

export interface IngestOptions {
  readonly store: BlobStore;
  readonly metadata: MirrorMetadata;
  readonly now: () => number;
  /** How bytes are checked against their digest; hashing on the calling thread by default. */
  readonly createVerifier?: CreateVerifier;
}

/** Where a blob's bytes go: the store's writer, or a pass-through download that keeps nothing. */
export interface BlobTarget {
  readonly writer: BlobWriter;
  /** False when the store would not cache the blob now: nothing lands, so nothing may be linked. */
  readonly kept: boolean;
}

/**
 * Who asked for a tag: a client's pull, a sync run, or an import. `cache ls` shows the last client
 * pull apart from the last sync; an import is neither.
 */
export type TagOrigin = 'client' | 'sync' | 'import';

/** What a tag points to. */
export interface TagTarget {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
}

/**
 * The one way content enters the cache, whoever fetched it (a client pull, sync, an import):
 * verify (the verifier inside every writer, or `verify` for bytes in memory) → commit (the
 * writer) → link (the upstream that holds the digest, which serving checks, and the repository
 * link a per-repository read policy needs) → tag.
 * Nothing is recorded for bytes that were not kept.
 */
export class Ingest {
  readonly #store: BlobStore;
  readonly #metadata: MirrorMetadata;
  readonly #now: () => number;
  readonly #createVerifier: CreateVerifier;

  constructor(options: IngestOptions) {
    this.#store = options.store;
    this.#metadata = options.metadata;
    this.#now = options.now;
    this.#createVerifier = options.createVerifier ?? createVerifier;
  }

  /**
   * Checks in-memory bytes against the digest they were asked by or announced with (throws
   * DigestMismatchError); without one, the digest is the one computed here.
   */
  async verify(bytes: Buffer, claimed: Digest | undefined, algorithm: DigestAlgorithm): Promise<Digest> {
    if (claimed === undefined) return computeDigest(bytes, algorithm);
    const verifier = this.#createVerifier(claimed, bytes.length);
    verifier.update(bytes);
    await verifier.finish();
    return claimed;
  }

  /** Where a blob's bytes go; its writer verifies them before commit() lets the last byte out. */
  async begin(digest: Digest, size: number | undefined): Promise<BlobTarget> {
    const writer = await this.#store.begin(digest, size);
    if (writer !== undefined) return { writer, kept: true };
    return { writer: new PassThroughWriter(digest, size, this.#createVerifier(digest, size)), kept: false };
  }

  /** Commits verified bytes held in memory (a manifest) and links them; false when the store kept nothing. */
  async content(ref: RepoRef, digest: Digest, mediaType: string, bytes: Buffer): Promise<boolean> {
    if ((await this.#store.stat(digest)) === undefined) {
      const writer = await this.#store.begin(digest, bytes.length);
      if (writer === undefined) return false;
      try {
        await writer.write(bytes);
        await writer.commit();
      } catch (err) {
        await writer.abort(err as Error);
        throw err;
      }
    }
    await this.manifest(ref, digest, mediaType, bytes.length);
    return true;
  }

  /** Records a committed manifest (bytes already in the store, e.g. imported as a blob) and links it. */
  async manifest(ref: RepoRef, digest: Digest, mediaType: string, size: number): Promise<void> {
    await this.#metadata.setManifest(digest, { mediaType, size });
    await this.link(ref, digest, size);
  }

  /**
   * Records that `ref`'s repository holds a committed digest: its upstream's blob record (a digest is
   * served for the upstreams linked only) and the (upstream, repository, digest) link.
   */
  async link(ref: RepoRef, digest: Digest, size: number): Promise<void> {
    const record = await this.#metadata.getBlob(digest);
    if (!record?.upstreams.includes(ref.upstream)) await this.#metadata.setBlob(digest, { size, upstreams: [...(record?.upstreams ?? []), ref.upstream] });
    await this.#metadata.link(ref.upstream, ref.name, [digest]);
  }

  /** Points a tag at content upstream just confirmed; the other origin's last time stays as it was. */
  async tag(ref: RepoRef, tag: string, target: TagTarget, origin: TagOrigin = 'client'): Promise<void> {
    const now = this.#now();
    const previous = await this.#metadata.getTag(ref.upstream, ref.name, tag);
    const pulledAt = origin === 'client' ? now : previous?.pulledAt;
    const syncedAt = origin === 'sync' ? now : previous?.syncedAt;
    await this.#metadata.setTag(ref.upstream, ref.name, tag, {
      digest: target.digest,
      mediaType: target.mediaType,
      size: target.size,
      fetchedAt: now,
      ...(pulledAt === undefined ? {} : { pulledAt }),
      ...(syncedAt === undefined ? {} : { syncedAt }),
    });
  }
}
