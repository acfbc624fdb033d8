import { mkdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/index.js';
import { BlobFollower, type FollowSource, type RecentChunk } from './blob-follower.js';
import { BlobReadStream } from './blob-read-stream.js';
import { isErrno, syncDir } from '../fs-util.js';
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
/** Recent chunks kept for followers (about 4 MiB of 64 KiB upstream chunks per download). */
const RECENT_CHUNKS = 4 * MAX_BATCH;

interface QueuedChunk {
  readonly buf: Buffer;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One in-progress blob: appends to a temp file with positional writes (so `bytesWritten`
 * is exactly what the file holds), hashes as it goes, and feeds its followers.
 * The file handle is shared by the writer and every follower and closed by whoever
 * releases it last, so a follower keeps reading the same inode across the rename.
 */
export class FsBlobWriter implements BlobWriter, FollowSource {
  readonly digest: Digest;
  readonly expectedSize: number | undefined;
  readonly handle: FileHandle;
  readonly #tmpPath: string;
  readonly #finalPath: string;
  readonly #verifier: Verifier;
  #written = 0;
  #state: State = 'writing';
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
  readonly #followers = new Set<BlobFollower>();
  /** The writer's own reference plus one per live follower. */
  #handleRefs = 1;
  #handleClosed: Promise<void> | undefined;
  // The last few batches' chunks, oldest first: a follower that keeps up (minus the held-back
  // byte) finds its bytes here and skips reading them back from the file. Two chunks were
  // enough when every chunk was its own write; with batches, 16 followers reading the file
  // instead doubled the CPU of a concurrent cold GET.
  #recent: RecentChunk[] = [];

  constructor(init: FsBlobWriterInit) {
    this.digest = init.digest;
    this.expectedSize = init.expectedSize;
    this.handle = init.handle;
    this.#tmpPath = init.tmpPath;
    this.#finalPath = init.finalPath;
    this.#verifier = init.verifier;
  }

  get bytesWritten(): number {
    return this.#written;
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
   * The writer keeps a reference to `chunk` (followers that keep up get it without a
   * file read), so the caller must not reuse the buffer; upstream body chunks never are.
   * Calls may overlap: chunks accepted while a write is in flight go to the file together in
   * one positional writev, in order (one pool round trip per 64 KiB chunk cost a cold 512 MiB
   * GET about 0.7 s when the caller waited for each).
   */
  write(chunk: Buffer): Promise<void> {
    if (this.#state !== 'writing') return Promise.reject(this.#closedError());
    const queued = new Promise<void>((resolve, reject) => this.#queue.push({ buf: chunk, resolve, reject }));
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
        await this.#append(batch.map((q) => q.buf));
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
    const start = this.#written;
    let next = start;
    for (const chunk of chunks) next += chunk.length;
    if (next === start) return;
    if (this.expectedSize !== undefined && next > this.expectedSize) {
      const error = new SizeMismatchError(this.expectedSize, next);
      await this.#fail(error);
      throw error;
    }
    try {
      await writeAllAt(this.handle, chunks, start);
    } catch (cause) {
      if (this.#aborted()) throw this.#closedError();
      const error = new StorageError(`writing the temp file of ${this.digest} failed`, { cause });
      await this.#fail(error);
      throw error;
    }
    if (this.#aborted()) throw this.#closedError();
    let at = start;
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      this.#verifier.update(chunk);
      this.#recent.push({ buf: chunk, start: at });
      at += chunk.length;
    }
    if (this.#recent.length > RECENT_CHUNKS) this.#recent.splice(0, this.#recent.length - RECENT_CHUNKS);
    this.#written = next;
    for (const follower of this.#followers) follower.wake();
  }

  visibleEnd(): number {
    if (this.committed) return this.#written;
    // With a known size only the blob's final byte must wait; otherwise any byte may be
    // the last one, so the newest byte always waits for the next write or the commit.
    const cap = this.expectedSize !== undefined ? this.expectedSize - 1 : this.#written - 1;
    return Math.max(0, Math.min(this.#written, cap));
  }

  recentChunk(pos: number): RecentChunk | undefined {
    const recent = this.#recent;
    let lo = 0;
    let hi = recent.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = recent[mid]!;
      if (pos < chunk.start) hi = mid - 1;
      else if (pos >= chunk.start + chunk.buf.length) lo = mid + 1;
      else return chunk;
    }
    return undefined;
  }

  follow(span?: ByteSpan): Readable {
    const start = span?.start ?? 0;
    if (this.#state === 'committed') {
      // The writer may have released the temp file already: read the committed blob.
      return new BlobReadStream({ path: this.#finalPath, start, end: span ? span.end + 1 : Infinity });
    }
    if (this.#state === 'aborted') {
      const failed = new Readable({ read: noop });
      failed.destroy(this.#abortReason);
      return failed;
    }
    const follower = new BlobFollower(this, start, span ? span.end + 1 : Infinity);
    this.#handleRefs += 1;
    this.#followers.add(follower);
    return follower;
  }

  release(follower: BlobFollower): void {
    if (this.#followers.delete(follower)) this.#unrefHandle();
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
      for (const follower of this.#followers) follower.wake();
      // The name must never point at bytes a power loss could take back.
      await this.handle.sync();
      await this.#place();
    } catch (error) {
      const reason = error instanceof StorageError ? error : new StorageError(`committing ${this.digest} failed`, { cause: error });
      await this.#fail(reason);
      throw reason;
    }
    this.#state = 'committed';
    for (const follower of this.#followers) follower.wake();
    this.#unrefHandle();
    return { digest: this.digest, size: this.#written };
  }

  async #place(): Promise<void> {
    const dir = dirname(this.#finalPath);
    if (await exists(this.#finalPath)) {
      // Another writer of the same digest won; its bytes are verified and identical.
      await unlink(this.#tmpPath);
      return;
    }
    try {
      await rename(this.#tmpPath, this.#finalPath);
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
      await mkdir(dir, { recursive: true });
      await rename(this.#tmpPath, this.#finalPath);
    }
    await syncDir(dir);
  }

  async abort(reason: Error): Promise<void> {
    if (this.#state === 'committing') {
      // commit() either lands the blob or aborts by itself; nothing is left to undo.
      await this.#commit?.then(noop, noop);
      return;
    }
    if (this.#state === 'committed') return;
    await this.#fail(reason);
  }

  #fail(reason: Error): Promise<void> {
    if (this.#abort !== undefined) return this.#abort;
    this.#state = 'aborted';
    this.#abortReason = reason;
    this.#recent = [];
    for (const follower of [...this.#followers]) follower.destroy(reason);
    this.#unrefHandle();
    this.#abort = this.#cleanUp();
    return this.#abort;
  }

  async #cleanUp(): Promise<void> {
    await this.#handleClosed;
    await unlink(this.#tmpPath).catch(noop);
  }

  #unrefHandle(): void {
    this.#handleRefs -= 1;
    // FileHandle.close waits for reads still in flight, so the fd cannot be reused under them.
    if (this.#handleRefs === 0) this.#handleClosed = this.handle.close().catch(noop);
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

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

/** Positional writev that finishes short writes (a full disk or a signal may cut one). */
async function writeAllAt(handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let bufs = chunks.filter((c) => c.length > 0);
  let at = position;
  while (bufs.length > 0) {
    const { bytesWritten } = await handle.writev(bufs, at);
    at += bytesWritten;
    let skip = bytesWritten;
    while (bufs.length > 0 && skip >= bufs[0]!.length) skip -= bufs.shift()!.length;
    if (skip > 0) bufs = [bufs[0]!.subarray(skip), ...bufs.slice(1)];
  }
}
