import { close, open, read } from 'node:fs';
import { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import { READ_CHUNK_BYTES, ReadBufferPool } from './read-buffers.js';

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
 * A committed blob file as a stream of large positional reads into reusable buffers: a consumer
 * that hands chunks back through `recycle()` (the HTTP send loop does, once the socket wrote them)
 * lets the next reads reuse them; one that does not gets fresh buffers, like fs.createReadStream.
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
  readonly #buffers = new ReadBufferPool();

  constructor(init: BlobReadStreamInit) {
    super({ highWaterMark: READ_CHUNK_BYTES });
    this.#path = init.path;
    this.#fd = init.fd;
    this.#start = init.start;
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
    const buf = this.#buffers.take();
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
      if (bytesRead === buf.length) return void this.push(buf);
      // A short read of a committed (immutable) file is its end: no second read to learn that. A small
      // file read whole at once (a manifest, a config) leaves as an exact copy, so its reply does not
      // hold a 1 MiB buffer; the tail of a large one keeps its pooled buffer, which is recycled.
      if (bytesRead < length && this.#end === Infinity) this.#end = this.#pos;
      if (pos !== this.#start || bytesRead > SMALL_COPY_BYTES) return void this.push(buf.subarray(0, bytesRead));
      const exact = Buffer.allocUnsafe(bytesRead);
      buf.copy(exact, 0, 0, bytesRead);
      this.#buffers.give(buf);
      this.push(exact);
    });
  }

  recycle(chunk: Buffer): void {
    if (!this.destroyed) this.#buffers.give(chunk);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#buffers.clear();
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
