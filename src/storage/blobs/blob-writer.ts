import { unlink, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/index.js';
import { BlobFollower, type FollowSource, type RecentChunk } from './blob-follower.js';
import { BlobReadStream, failedStream } from './blob-read-stream.js';
import { FollowerSet } from './follower-set.js';
import { RecentChunks } from './recent-chunks.js';
import { slabs } from '../../buffers/index.js';
import { placeFile, writeAllAt } from '../fs-util.js';
import { SizeMismatchError, StorageError } from '../errors.js';
import type { Verifier } from './verifier.js';
import type { BlobInfo, BlobWriter, ByteSpan } from '../types.js';

export interface FsBlobWriterInit {
  readonly digest: Digest;
  readonly expectedSize: number | undefined;
  /** Opened read-write on the temp file: followers read through it too. */
  readonly handle: FileHandle;
  readonly tmpPath: string;
  readonly finalPath: string;
  /** Sees every byte written, in order; commit() waits for its verdict. */
  readonly verifier: Verifier;
}

type State = 'writing' | 'committing' | 'committed' | 'aborted';

const noop = (): void => {};

/** Chunks per writev: well under IOV_MAX (1024); a batch of 64 KiB chunks is 1 MiB. */
const MAX_BATCH = 16;
/** Bytes of recent chunks kept for followers once on disk, per download (those not on disk yet are all kept). */
const RECENT_BYTES = 4 * 1024 * 1024;
/**
 * Once the file stops taking bytes, how far the newest byte may run ahead of the slowest follower:
 * the bytes in between are held in memory only, so the source is then read at the followers' pace.
 */
const UNCACHED_LAG_BYTES = 4 * 1024 * 1024;

interface QueuedChunk {
  readonly buf: Buffer;
  /** Where the blob ends once this chunk is in. */
  readonly end: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One in-progress blob: appends to a temp file with positional writes, hashes as it goes, and feeds
 * its followers. The file handle is shared by the writer and every follower and closed by whoever
 * releases it last, so a follower keeps reading the same inode across the rename.
 *
 * When the file stops taking bytes (ENOSPC, EDQUOT, EIO; or the fsync or rename after the digest
 * matched) the writer stops caching, not its followers: the temp file is removed (its open handle
 * still serves what it holds), newer bytes stay in memory until every follower read them, and
 * commit() verifies but keeps nothing (`stoppedCaching` says why).
 */
export class FsBlobWriter implements BlobWriter, FollowSource {
  readonly digest: Digest;
  readonly expectedSize: number | undefined;
  readonly handle: FileHandle;
  readonly #tmpPath: string;
  readonly #finalPath: string;
  readonly #verifier: Verifier;
  /** Bytes received in order, hashed and readable by followers (from memory until on disk). */
  #received = 0;
  /** Bytes the file holds: every chunk past it is still in `#recent`. */
  #onDisk = 0;
  /** Where the newest chunk starts: it is readable once on disk or once another follows it. */
  #newestStart = 0;
  #state: State = 'writing';
  #stopped: StorageError | undefined;
  /** Bytes the file holds once caching stopped; followers read past it from memory only. */
  #fileEnd = 0;
  /** The digest matched: every byte may be handed out, even while fsync and rename are still running. */
  #verified = false;
  #abortReason: Error | undefined;
  /** Settles (never rejects) when every accepted write has finished: writes are serialised on it. */
  #tail: Promise<void> = Promise.resolve();
  /** Chunks accepted but not yet written, and whether a flush of them is scheduled. */
  readonly #queue: QueuedChunk[] = [];
  #flushing = false;
  #commit: Promise<BlobInfo> | undefined;
  #abort: Promise<void> | undefined;
  readonly #followers = new FollowerSet();
  /** The writer's own reference (until it writes no more) plus one per live follower. */
  #handleRefs = 1;
  #ownRef = true;
  #handleClosed: Promise<void> | undefined;
  // Every chunk not on disk yet, and the last few MiB that are: a follower that keeps up finds its
  // bytes here before the disk has them and never reads them back. Two chunks were enough when every
  // chunk was its own write; with batches, 16 followers reading the file doubled a concurrent cold GET's CPU.
  readonly #recent = new RecentChunks();

  constructor(init: FsBlobWriterInit) {
    this.digest = init.digest;
    this.expectedSize = init.expectedSize;
    this.handle = init.handle;
    this.#tmpPath = init.tmpPath;
    this.#finalPath = init.finalPath;
    this.#verifier = init.verifier;
  }

  get bytesWritten(): number {
    return this.#received;
  }

  get stoppedCaching(): Error | undefined {
    return this.#stopped;
  }

  /**
   * Followers may hand out the final bytes once the digest matched; the fsync and rename that make
   * the blob durable in the cache need not hold every client back (on a 512 MiB blob the fsync
   * alone added about a second to a cold pull).
   */
  get committed(): boolean {
    return this.#verified || this.#state === 'committed';
  }

  /**
   * `chunk` is copied into a pooled slab (buffers/), so the caller's buffer is free at once; a pooled view is taken over.
   * It is hashed and handed to the followers at once, from memory: clients need not wait for the
   * disk. Calls may overlap: chunks accepted while a write is in flight go to the file together in
   * one positional writev, in order (one pool round trip per 64 KiB chunk cost a cold 512 MiB
   * GET about 0.7 s when the caller waited for each); the promise settles once the chunk is on disk.
   */
  write(chunk: Buffer): Promise<void> {
    if (this.#state !== 'writing') return Promise.reject(this.#closedError());
    const end = this.#received + chunk.length;
    if (this.expectedSize !== undefined && end > this.expectedSize) {
      const error = new SizeMismatchError(this.expectedSize, end);
      return this.#fail(error).then(() => Promise.reject(error));
    }
    const buf = slabs.adopt(chunk);
    this.#verifier.update(buf);
    // The recent chunks own the slab reference now, and keep it until the bytes are on disk.
    this.#recent.push(buf, this.#received);
    this.#newestStart = this.#received;
    this.#received = end;
    this.#followers.wakeSoon();
    const queued = new Promise<void>((resolve, reject) => this.#queue.push({ buf, end, resolve, reject }));
    if (!this.#flushing) {
      this.#flushing = true;
      const run = this.#tail.then(() => this.#flush());
      this.#tail = run.then(noop, noop);
    }
    return queued;
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      try {
        const bufs = batch.map((q) => q.buf);
        if (this.#stopped === undefined) await this.#append(bufs);
        // Not `else`: the append may have just stopped caching, leaving this batch unwritten.
        if (this.#stopped !== undefined) await this.#keep(batch[batch.length - 1]!.end);
        await this.#verifier.room();
        for (const q of batch) q.resolve();
      } catch (error) {
        for (const q of [...batch, ...this.#queue.splice(0)]) q.reject(error);
      }
    }
    this.#flushing = false;
  }

  async #append(chunks: Buffer[]): Promise<void> {
    // Writes accepted before commit() still run; only an abort stops them.
    if (this.#state === 'aborted') throw this.#closedError();
    const start = this.#onDisk;
    let next = start;
    for (const chunk of chunks) next += chunk.length;
    try {
      await writeAllAt(this.handle, chunks, start);
    } catch (cause) {
      if (this.#aborted()) throw this.#closedError();
      this.#stopCaching(new StorageError(`writing the temp file of ${this.digest} failed`, { cause }));
      return;
    }
    if (this.#aborted()) throw this.#closedError();
    this.#onDisk = next;
    this.#recent.keepNewest(RECENT_BYTES, next);
    this.#followers.wake();
  }

  /** Caching stopped: the chunks up to `end` go to the followers from memory, at the pace of the slowest. */
  async #keep(end: number): Promise<void> {
    if (this.#aborted()) throw this.#closedError();
    // Nobody is left to stream to: stop, so the source's GET stops too.
    if (this.#followers.size === 0) {
      const error = new StorageError(`${this.digest} cannot be cached (${this.#stopped?.message ?? 'caching stopped'}) and no client follows it`, { cause: this.#stopped });
      await this.#fail(error);
      throw error;
    }
    await this.#followers.reach(end - UNCACHED_LAG_BYTES);
  }

  /** The file stops taking bytes: remove it (open handles keep serving what it holds) and go on in memory. */
  #stopCaching(reason: StorageError): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = reason;
    this.#fileEnd = this.#onDisk;
    unlink(this.#tmpPath).catch(noop);
    this.#dropOwnRef();
    this.progressed();
  }

  progressed(): void {
    if (this.#stopped === undefined) return;
    const slowest = this.#followers.settle();
    this.#recent.dropBefore(slowest);
    // Past the file's end every follower reads from memory: close it, so its blocks are freed now.
    if (slowest >= this.#fileEnd) this.#closeHandle();
  }

  visibleEnd(): number {
    if (this.committed) return this.#received;
    // With a known size only the blob's final byte must wait; otherwise any byte may be
    // the last one, so the newest byte always waits for the next write or the commit.
    const cap = this.expectedSize !== undefined ? this.expectedSize - 1 : this.#received - 1;
    // The newest chunk waits for the disk (or the next chunk): a blob that arrives in one piece is
    // verified in the turn its bytes become readable, so a mismatch is an error answer, not a cut 200.
    const ready = Math.max(this.#onDisk, this.#newestStart);
    return Math.max(0, Math.min(this.#received, cap, ready));
  }

  fileEnd(): number {
    return this.#stopped === undefined ? this.#onDisk : this.#fileEnd;
  }

  recentChunk(pos: number): RecentChunk | undefined {
    return this.#recent.find(pos);
  }

  follow(span?: ByteSpan): Readable {
    const start = span?.start ?? 0;
    if (this.#stopped !== undefined) {
      // The bytes a late follower needs may be gone from memory already: it starts its own download.
      return failedStream(new StorageError(`${this.digest} is streamed without caching: a late reader starts over`, { cause: this.#stopped }));
    }
    if (this.#state === 'committed') {
      // The writer may have released the temp file already: read the committed blob.
      return new BlobReadStream({ path: this.#finalPath, start, end: span ? span.end + 1 : Infinity });
    }
    if (this.#state === 'aborted') return failedStream(this.#abortReason);
    const follower = new BlobFollower(this, start, span ? span.end + 1 : Infinity);
    this.#handleRefs += 1;
    this.#followers.add(follower);
    return follower;
  }

  release(follower: BlobFollower): void {
    if (!this.#followers.delete(follower)) return;
    this.#unrefHandle();
    this.progressed();
  }

  commit(): Promise<BlobInfo> {
    if (this.#commit !== undefined) return this.#commit;
    if (this.#state === 'aborted') return Promise.reject(this.#closedError());
    this.#state = 'committing';
    this.#commit = this.#doCommit();
    return this.#commit;
  }

  async #doCommit(): Promise<BlobInfo> {
    await this.#tail;
    // A write failed while we waited: it aborted already.
    if (this.#aborted()) throw this.#closedError();
    try {
      // Size, then digest: SizeMismatchError / DigestMismatchError.
      await this.#verifier.finish();
      this.#verified = true;
      this.#followers.wake();
      if (this.#stopped === undefined) {
        // The name must never point at bytes a power loss could take back.
        await this.handle.sync();
        await placeFile(this.#tmpPath, this.#finalPath);
      }
    } catch (error) {
      const reason = error instanceof StorageError ? error : new StorageError(`committing ${this.digest} failed`, { cause: error });
      // The bytes are right and every follower can still read them: only the cache lost out.
      if (this.#verified) this.#stopCaching(reason);
      else {
        // Rejected in the turn the followers are cut, before their clients can be back; abort() waits for the clean-up.
        void this.#fail(reason);
        throw reason;
      }
    }
    this.#state = 'committed';
    this.#followers.wake();
    this.#dropOwnRef();
    return { digest: this.digest, size: this.#received };
  }

  async abort(reason: Error): Promise<void> {
    if (this.#state === 'committing') {
      // commit() either lands the blob or fails by itself; then only its clean-up is left to wait for.
      await this.#commit?.then(noop, () => this.#abort);
      return;
    }
    if (this.#state === 'committed') return;
    await this.#fail(reason);
  }

  #fail(reason: Error): Promise<void> {
    if (this.#abort !== undefined) return this.#abort;
    this.#state = 'aborted';
    this.#abortReason = reason;
    this.#recent.clear();
    this.#verifier.discard();
    this.#followers.destroy(reason);
    this.#dropOwnRef();
    this.#abort = this.#cleanUp();
    return this.#abort;
  }

  async #cleanUp(): Promise<void> {
    await this.#handleClosed;
    await unlink(this.#tmpPath).catch(noop);
  }

  #unrefHandle(): void {
    this.#handleRefs -= 1;
    if (this.#handleRefs === 0) this.#closeHandle();
  }

  #dropOwnRef(): void {
    if (!this.#ownRef) return;
    this.#ownRef = false;
    this.#unrefHandle();
  }

  /** Once. FileHandle.close waits for reads still in flight, so the fd cannot be reused under them. */
  #closeHandle(): void {
    this.#handleClosed ??= this.handle.close().catch(noop);
  }

  /** A method, not a field test: the state changes across awaits, which narrowing cannot see. */
  #aborted(): boolean {
    return this.#state === 'aborted';
  }

  #closedError(): Error {
    if (this.#state === 'aborted') return this.#abortReason ?? new StorageError(`write of ${this.digest} was aborted`);
    return new StorageError(`write of ${this.digest} no longer accepts bytes: commit() was called`);
  }
}
