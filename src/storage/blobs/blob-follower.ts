import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { StorageError } from '../errors.js';
import { readBuffers, ReadSize, SMALL_READ_BYTES } from './read-buffers.js';
import { slabs } from '../../buffers/index.js';


/** What a follower needs from the in-progress write it follows. */
export interface FollowSource {
  /** The temp file; it stays readable after the rename or unlink on POSIX. */
  readonly handle: FileHandle;
  /** The digest matched (the fsync and rename may still be running). */
  readonly committed: boolean;
  /** Exclusive end of the bytes a follower may hand out now (the held-back tail excluded). */
  visibleEnd(): number;
  /** Exclusive end of the bytes the file holds: the rest of what is visible is in memory only. */
  fileEnd(): number;
  /**
   * A chunk the writer wrote recently that holds byte `pos`, or undefined. Lets a follower
   * that keeps up take the bytes straight from memory instead of reading them back.
   */
  recentChunk(pos: number): RecentChunk | undefined;
  /** The follower is done with the handle (ended or destroyed). Called exactly once. */
  release(follower: BlobFollower): void;
  /** The follower's `progress` moved on. */
  progressed(): void;
}

export interface RecentChunk {
  readonly buf: Buffer;
  /** Blob offset of buf[0]. */
  readonly start: number;
}

/**
 * A reader of a blob that is still being written. It pushes only when the consumer asked
 * (`_read`), so a slow client holds at most one stream buffer, never the whole blob.
 * It never pushes the last byte (of the blob or of its span) before the writer verified the digest:
 * if the digest then fails, the consumer sees an error instead of a clean end of wrong bytes.
 */
export class BlobFollower extends Readable {
  readonly #source: FollowSource;
  #pos: number;
  readonly #start: number;
  /** Exclusive end of the span; Infinity = to the end of the blob. */
  readonly #end: number;
  /** `_read` was called and not yet answered with a push that returned false. */
  #wanting = false;
  /** A file read is in flight; the next one waits for it so bytes stay in order. */
  #reading = false;
  /** Guards against re-entry if a consumer reads synchronously inside a push. */
  #pumping = false;
  #released = false;
  /** The span's last byte, copied once written: it goes out after the verdict, whatever the writer still keeps. */
  #tail: Buffer | undefined;
  readonly #size = new ReadSize();

  constructor(source: FollowSource, start: number, end: number) {
    // Nothing is read ahead of a paused consumer: a stalled client holds only what its socket queued.
    super({ highWaterMark: 0 });
    this.#source = source;
    this.#pos = start;
    this.#start = start;
    this.#end = end;
  }

  /**
   * The blob offset this follower still needs bytes from; Infinity once it holds everything it will
   * hand out. A writer keeping bytes in memory drops what every follower has passed.
   */
  get progress(): number {
    return this.#tail !== undefined ? Number.POSITIVE_INFINITY : this.#pos;
  }

  /** The writer calls this after new bytes landed or after commit. */
  wake(): void {
    if (this.#wanting) this.#pump();
  }

  override _read(): void {
    this.#wanting = true;
    this.#pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release();
    callback(error);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#source.release(this);
  }

  #pump(): void {
    if (this.#reading || this.#pumping || this.destroyed) return;
    this.#pumping = true;
    try {
      this.#pumpLoop();
    } finally {
      this.#pumping = false;
    }
  }

  #pumpLoop(): void {
    const source = this.#source;
    while (this.#wanting) {
      const committed = source.committed;
      let limit = Math.min(source.visibleEnd(), this.#end);
      // The span's own last byte is held back too, or a range request would get a
      // complete, well-framed 206 before the blob's digest was checked.
      if (!committed && limit >= this.#end) limit = this.#end - 1;
      if (this.#pos >= limit) {
        if (committed) {
          this.#wanting = false;
          this.push(null);
          this.#release();
        } else if (limit === this.#end - 1) this.#keepTail();
        return;
      }
      if (this.#tail !== undefined && this.#pos === this.#end - 1) {
        this.#pos = this.#end;
        this.#wanting = this.push(this.#tail);
        continue;
      }
      const recent = source.recentChunk(this.#pos);
      if (recent !== undefined) {
        const piece = this.#pieceOf(recent, limit);
        this.#pos += piece.length;
        this.#wanting = this.push(piece);
        source.progressed();
        continue;
      }
      // Not in memory, so on disk: the read stops where the file does, and the next bytes come from memory.
      this.#readFile(Math.min(limit, source.fileEnd()) - this.#pos);
      return;
    }
  }

  /**
   * The bytes from `#pos` in a chunk the writer holds. While the consumer reads small (its first
   * bytes, and after it fell behind) they are copied into a small read buffer: a client that stops
   * reading then holds 64 KiB, not the whole slab its piece is a view of. Otherwise the piece is
   * that view, and the slab is held until the send loop recycles it: the writer may drop its chunk first.
   */
  #pieceOf(recent: RecentChunk, limit: number): Buffer {
    const from = this.#pos - recent.start;
    const to = Math.min(recent.buf.length, limit - recent.start);
    if (this.#size.next(this.#pos - this.#start) <= SMALL_READ_BYTES) {
      const length = Math.min(SMALL_READ_BYTES, to - from);
      const copy = readBuffers.take(length);
      recent.buf.copy(copy, 0, from, from + length);
      return length === copy.length ? copy : copy.subarray(0, length);
    }
    const piece = from === 0 && to === recent.buf.length ? recent.buf : recent.buf.subarray(from, to);
    slabs.retain(piece);
    return piece;
  }

  /** Only the span's last byte is left: copy it while it is still at hand (it may be in memory only). */
  #keepTail(): void {
    if (this.#tail !== undefined) return;
    const chunk = this.#source.recentChunk(this.#end - 1);
    if (chunk === undefined) return;
    const at = this.#end - 1 - chunk.start;
    this.#tail = Buffer.from(chunk.buf.subarray(at, at + 1));
    this.#source.progressed();
  }

  /** A chunk this follower handed out is free again (the HTTP send loop wrote it). */
  recycle(chunk: Buffer): void {
    readBuffers.give(chunk);
    slabs.release(chunk);
  }

  /** The consumer had to queue the last chunk: read small again. */
  slowDown(): void {
    this.#size.slowDown();
  }

  #readFile(upTo: number): void {
    const length = Math.min(upTo, this.#size.next(this.#pos - this.#start));
    if (length <= 0) {
      this.destroy(new StorageError(`byte ${this.#pos} is neither in memory nor on disk`));
      return;
    }
    this.#reading = true;
    const buf = readBuffers.take(length);
    const pos = this.#pos;
    this.#source.handle.read(buf, 0, length, pos).then(
      ({ bytesRead }) => {
        this.#reading = false;
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.destroy(new StorageError(`temp file ended at ${pos}, before the bytes written`));
          return;
        }
        this.#pos += bytesRead;
        // A consumer that paused on this chunk gets nothing read ahead of it.
        this.#wanting = this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)) && this.readableFlowing !== false;
        this.#source.progressed();
        this.#pump();
      },
      (error: unknown) => {
        this.#reading = false;
        this.destroy(new StorageError('reading the temp file failed', { cause: error }));
      },
    );
  }
}
