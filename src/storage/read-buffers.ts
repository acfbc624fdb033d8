import type { Readable } from 'node:stream';

/** Size of one read from a blob file, and of the buffers the readers keep for reuse. */
export const READ_CHUNK_BYTES = 1024 * 1024;
/** A consumer that recycles keeps about two chunks in flight (one in the socket, one read ahead). */
const POOL_MAX = 4;

/** A stream whose chunks may be handed back once the consumer is entirely done with them. */
export interface ChunkRecycler {
  /** `chunk` came from this stream and nothing references it any more: its memory may be reused. */
  recycle(chunk: Buffer): void;
}

/** The stream's recycler if it is one (BlobReadStream); other streams, followers included, get none. */
export function chunkRecycler(stream: Readable): ChunkRecycler | undefined {
  const candidate = stream as Readable & Partial<ChunkRecycler>;
  return typeof candidate.recycle === 'function' ? (candidate as ChunkRecycler) : undefined;
}

/**
 * Read buffers of one stream. A fresh 1 MiB buffer per read makes V8 count the whole blob as
 * external memory, and that pressure starts a full mark-compact about every 64 MiB; in a process
 * with regmirror's heap those collections cost more CPU than the bytes themselves (perf on a warm
 * 512 MiB GET: ~40% of the samples in V8 marking and sweeping). Buffers handed back are reused,
 * so a stream whose consumer recycles allocates two or three in all.
 */
export class ReadBufferPool {
  readonly #free: Buffer[] = [];
  readonly #owned = new WeakSet<ArrayBufferLike>();

  take(): Buffer {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    // Its own ArrayBuffer (not a slice of Node's shared pool), so give() can tell it is ours.
    const buf = Buffer.allocUnsafeSlow(READ_CHUNK_BYTES);
    this.#owned.add(buf.buffer);
    return buf;
  }

  /** Takes back a chunk (or a piece of one) this pool handed out; ignores any other buffer. */
  give(chunk: Buffer): void {
    if (this.#free.length >= POOL_MAX || !this.#owned.has(chunk.buffer)) return;
    this.#free.push(Buffer.from(chunk.buffer, 0, READ_CHUNK_BYTES));
  }

  clear(): void {
    this.#free.length = 0;
  }
}
