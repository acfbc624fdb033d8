import { close, open, read } from 'node:fs';
import { Readable } from 'node:stream';
import { StorageError } from './errors.js';

/** Size of one read, and of the buffers a reader keeps for reuse. */
export const READ_CHUNK_BYTES = 1024 * 1024;
/** A consumer that recycles keeps about two chunks in flight (one in the socket, one read ahead). */
const POOL_MAX = 4;

/** A stream whose chunks may be handed back once the consumer is entirely done with them. */
export interface ChunkRecycler {
  /** `chunk` came from this stream and nothing references it any more: its memory may be reused. */
  recycle(chunk: Buffer): void;
}

export interface BlobReadStreamInit {
  /** For messages, and to open when no `fd` is given. */
  readonly path: string;
  /** An fd opened for reading; the stream owns and closes it. */
  readonly fd?: number;
  readonly start: number;
  /** Exclusive end offset; Infinity reads to the end of the file. */
  readonly end: number;
}

/**
 * A committed blob file as a stream of large positional reads. It exists for the warm path: a fresh
 * 1 MiB buffer per read makes V8 count 512 MiB of external memory per 512 MiB blob, and that
 * pressure starts a full mark-compact about every 64 MiB — in a process with regmirror's heap those
 * collections cost more CPU than the bytes themselves (measured: ~40% of the server's samples in
 * V8 marking and sweeping during a warm GET). A consumer that returns chunks through `recycle()`
 * lets the next reads reuse them, so a stream allocates two or three buffers in all; a consumer
 * that does not recycle gets fresh buffers, exactly like fs.createReadStream.
 */
export class BlobReadStream extends Readable implements ChunkRecycler {
  readonly #path: string;
  #fd: number | undefined;
  #pos: number;
  readonly #end: number;
  #reading = false;
  /** _destroy arrived while a read was in flight: close once it lands, so the fd is never reused under it. */
  #closeWhenIdle: (() => void) | undefined;
  readonly #free: Buffer[] = [];
  readonly #owned = new WeakSet<ArrayBufferLike>();

  constructor(init: BlobReadStreamInit) {
    super({ highWaterMark: READ_CHUNK_BYTES });
    this.#path = init.path;
    this.#fd = init.fd;
    this.#pos = init.start;
    this.#end = init.end;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.#fd !== undefined) return callback();
    open(this.#path, 'r', (error, fd) => {
      if (error) return callback(new StorageError(`opening ${this.#path} failed`, { cause: error }));
      this.#fd = fd;
      callback();
    });
  }

  override _read(): void {
    if (this.#reading) return;
    const fd = this.#fd;
    const length = Math.min(READ_CHUNK_BYTES, this.#end - this.#pos);
    if (fd === undefined || length <= 0) {
      this.push(null);
      return;
    }
    const buf = this.#free.pop() ?? this.#allocate();
    const pos = this.#pos;
    this.#reading = true;
    read(fd, buf, 0, length, pos, (error, bytesRead) => {
      this.#reading = false;
      if (this.#closeWhenIdle !== undefined) return this.#closeWhenIdle();
      if (error) return this.destroy(new StorageError(`reading ${this.#path} failed`, { cause: error }));
      if (bytesRead === 0) {
        if (this.#end === Infinity) return void this.push(null);
        return this.destroy(new StorageError(`${this.#path} ended at ${pos}, before ${this.#end}`));
      }
      this.#pos += bytesRead;
      this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    });
  }

  recycle(chunk: Buffer): void {
    if (this.destroyed || this.#free.length >= POOL_MAX || !this.#owned.has(chunk.buffer)) return;
    this.#free.push(Buffer.from(chunk.buffer, 0, READ_CHUNK_BYTES));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#free.length = 0;
    const closeFd = () => {
      this.#closeWhenIdle = undefined;
      const fd = this.#fd;
      this.#fd = undefined;
      if (fd === undefined) return callback(error);
      close(fd, () => callback(error));
    };
    if (this.#reading) this.#closeWhenIdle = closeFd;
    else closeFd();
  }

  #allocate(): Buffer {
    // Its own ArrayBuffer (not a slice of the shared pool), so recycle() can tell it is ours.
    const buf = Buffer.allocUnsafeSlow(READ_CHUNK_BYTES);
    this.#owned.add(buf.buffer);
    return buf;
  }
}

export function chunkRecycler(stream: Readable): ChunkRecycler | undefined {
  return stream instanceof BlobReadStream ? stream : undefined;
}
