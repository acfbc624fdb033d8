import { close, fstatSync, open, read } from 'node:fs';
import { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import { readBuffers, ReadSize } from './read-buffers.js';

/** fstat of an open fd reads the inode already in memory: no disk wait on the loop. Unknown (Infinity) if it fails. */
function fileLength(fd: number): number {
  try {
    return fstatSync(fd).size;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** A file this small, read whole in one go, is copied out and its read buffer reused. */
const SMALL_COPY_BYTES = 64 * 1024;

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
 * A committed blob file as a stream of positional reads into the process's shared read buffers: a
 * consumer that hands chunks back through `recycle()` (the HTTP send loop does, once the socket
 * wrote them) lets the next reads reuse them; one that does not leaves them to the GC, like
 * fs.createReadStream. Reads start small and grow while the consumer keeps up (`slowDown()` when it
 * does not), and nothing is read ahead of a paused consumer: a stalled client holds one small chunk.
 */
export class BlobReadStream extends Readable {
  readonly #path: string;
  #fd: number | undefined;
  readonly #start: number;
  #pos: number;
  #end: number;
  #reading = false;
  /** _destroy arrived while a read was in flight: close once it lands, so the fd is never reused under it. */
  #closeWhenIdle: (() => void) | undefined;
  /** Made in _construct, which knows the length and runs before any read. */
  #size!: ReadSize;

  constructor(init: BlobReadStreamInit) {
    // Nothing is read ahead of a paused consumer: its client then holds only what its socket queued.
    super({ highWaterMark: 0 });
    this.#path = init.path;
    this.#fd = init.fd;
    this.#start = init.start;
    this.#pos = init.start;
    this.#end = init.end;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // With no high-water mark Readable reads nothing by itself once constructed; a consumer that
    // asked while the file was opening (a 'readable' listener) would wait forever: start the first read.
    const opened = (fd: number): void => {
      this.#size = new ReadSize(this.#end === Infinity ? fileLength(fd) - this.#start : this.#end - this.#start);
      callback();
      process.nextTick(() => this.destroyed || this.read(0));
    };
    if (this.#fd !== undefined) return opened(this.#fd);
    open(this.#path, 'r', (error, fd) => {
      if (error) return callback(new StorageError(`opening ${this.#path} failed`, { cause: error }));
      this.#fd = fd;
      opened(fd);
    });
  }

  override _read(): void {
    if (this.#reading) return;
    const fd = this.#fd;
    const length = Math.min(this.#size.next(this.#pos - this.#start), this.#end - this.#pos);
    if (fd === undefined || length <= 0) {
      this.push(null);
      return;
    }
    const buf = readBuffers.take(length);
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
      // A short read of a committed (immutable) file is its end: no second read to learn that. A small
      // file read whole at once (a manifest, a config) leaves as an exact copy, so its reply does not
      // hold a pooled buffer; the tail of a large one keeps its pooled buffer, which is recycled.
      const short = bytesRead < length;
      if (short && this.#end === Infinity) this.#end = this.#pos;
      if (!short || pos !== this.#start || bytesRead > SMALL_COPY_BYTES) return void this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      const exact = Buffer.allocUnsafe(bytesRead);
      buf.copy(exact, 0, 0, bytesRead);
      readBuffers.give(buf);
      this.push(exact);
    });
  }

  recycle(chunk: Buffer): void {
    readBuffers.give(chunk);
  }

  slowDown(): void {
    this.#size.slowDown();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
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
}

/** A stream that fails on first read: for a reader that cannot be served. */
export function failedStream(error: Error | undefined): Readable {
  const failed = new Readable({ read() {} });
  failed.destroy(error);
  return failed;
}
