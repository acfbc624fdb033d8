/**
 * Largest single read from a blob file (file readers and followers alike). Large positional reads
 * keep syscalls and promise hops per byte low on the hot path.
 */
export const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * The first read of a stream, and every read after its consumer fell behind: what a stalled client
 * holds (one write the socket has not taken). Reads double from here while the consumer keeps up.
 */
export const SMALL_READ_BYTES = 64 * 1024;

/**
 * Free buffers kept per size, for the whole process: 8 MiB of large, 2 MiB of small at most. What
 * an idle mirror keeps; a warm stream that keeps up cycles two or three large ones.
 */
const KEEP = new Map<number, number>([
  [READ_CHUNK_BYTES, 8],
  [SMALL_READ_BYTES, 32],
]);

/**
 * Read buffers shared by every blob stream of the process. A fresh buffer per read makes V8 count
 * the whole blob as external memory, and that pressure starts a full mark-compact about every
 * 64 MiB (perf on a warm 512 MiB GET: ~40% of the samples in V8 marking and sweeping). Buffers
 * handed back are reused by whichever stream reads next, so memory follows the streams that are
 * moving, not the number of streams open: one per stream kept a paused client's 1-3 MiB alive.
 */
class SharedReadBuffers {
  readonly #free = new Map<number, Buffer[]>([...KEEP.keys()].map((size) => [size, []]));
  /** Handed out and not given back: only these may be taken back, once each. */
  readonly #out = new WeakSet<ArrayBufferLike>();

  /** A buffer of READ_CHUNK_BYTES or SMALL_READ_BYTES (whichever `bytes` fits in, up to the large one). */
  take(bytes: number): Buffer {
    const size = bytes <= SMALL_READ_BYTES ? SMALL_READ_BYTES : READ_CHUNK_BYTES;
    // Its own ArrayBuffer (not a slice of Node's shared pool), so give() can tell it is ours.
    const buf = this.#free.get(size)!.pop() ?? Buffer.allocUnsafeSlow(size);
    this.#out.add(buf.buffer);
    return buf;
  }

  /** Takes back a chunk (or a piece of one) that take() handed out; ignores any other buffer, and a second give. */
  give(chunk: Buffer): void {
    const backing = chunk.buffer;
    if (!this.#out.delete(backing)) return;
    const free = this.#free.get(backing.byteLength);
    if (free !== undefined && free.length < KEEP.get(backing.byteLength)!) free.push(Buffer.from(backing, 0, backing.byteLength));
  }

  /** Drops the free buffers (an idle server need not keep 10 MiB for the next stream); those out stay valid. */
  release(): void {
    for (const free of this.#free.values()) free.length = 0;
  }
}

export const readBuffers = new SharedReadBuffers();

/**
 * Bytes every stream sends in small reads before its reads may grow: what the kernel takes from a
 * client that reads nothing before its socket stops taking more (4 MiB on loopback here: Linux's
 * default tcp_wmem maximum plus the peer's window). Reads that grew earlier left such a client with
 * a 1 MiB chunk queued in its socket, ~100 MiB for 100 stalled readers (BENCHMARKS.md, "Memory:
 * idle return and stalled readers, final"); now it stalls holding one small one.
 */
export const SMALL_READS_BYTES = 4 * 1024 * 1024;

/**
 * How much a stream reads next: small for its first SMALL_READS_BYTES and after its consumer fell
 * behind, doubling with every read up to READ_CHUNK_BYTES after that while it keeps up. A client
 * that stops reading then holds one small buffer in its socket's queue, not a large one plus
 * another read ahead of it.
 */
export class ReadSize {
  #bytes = SMALL_READ_BYTES;
  /**
   * A stream no longer than SMALL_READS_BYTES grows at once: the kernel takes all of it from a client
   * that reads nothing, and small reads of a 256 KiB blob cost the 200-client load 10-15% of its
   * requests/s and raised its peak RSS.
   */
  readonly #smallUntil: number;

  /** `length`: the bytes the stream will hand out, Infinity when not known. */
  constructor(length = Number.POSITIVE_INFINITY) {
    this.#smallUntil = length > SMALL_READS_BYTES ? SMALL_READS_BYTES : 0;
  }

  /**
   * The size of this read, for a stream that has handed out `streamed` bytes so far (file reads and
   * a follower's chunks from memory alike); past the first SMALL_READS_BYTES the next one is twice as large.
   */
  next(streamed: number): number {
    const bytes = this.#bytes;
    if (streamed >= this.#smallUntil) this.#bytes = Math.min(READ_CHUNK_BYTES, bytes * 2);
    return bytes;
  }

  /** The consumer had to queue the last chunk: start small again. */
  slowDown(): void {
    this.#bytes = SMALL_READ_BYTES;
  }
}
