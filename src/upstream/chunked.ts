const MAX_LINE = 4096;

/**
 * `Transfer-Encoding: chunked` (RFC 9112 §7.1), fed the bytes as they land: hands on each run of
 * data as a view of the bytes it was given (no copy), skips extensions and trailers.
 */
export class ChunkedDecoder {
  #state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  #line = '';
  #left = 0;

  /** Feeds `bytes`; `data` gets each run of body bytes. True once the last chunk and the trailers ended. */
  feed(bytes: Buffer, data: (view: Buffer) => void): boolean {
    let i = 0;
    while (i < bytes.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const take = Math.min(this.#left, bytes.length - i);
        data(bytes.subarray(i, i + take));
        i += take;
        this.#left -= take;
        if (this.#left === 0) this.#state = 'data-end';
        continue;
      }
      const nl = bytes.indexOf(10, i);
      const end = nl < 0 ? bytes.length : nl;
      this.#line += bytes.toString('latin1', i, end);
      if (this.#line.length > MAX_LINE) throw new ChunkedError('a chunk line too long');
      i = end;
      if (nl < 0) break;
      i += 1;
      const line = this.#line.endsWith('\r') ? this.#line.slice(0, -1) : this.#line;
      this.#line = '';
      this.#endOfLine(line);
    }
    return this.#state === 'done';
  }

  #endOfLine(line: string): void {
    if (this.#state === 'data-end') {
      if (line !== '') throw new ChunkedError('chunk data longer than its size');
      this.#state = 'size';
    } else if (this.#state === 'size') {
      const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (m === null) throw new ChunkedError('a malformed chunk size');
      this.#left = parseInt(m[1]!, 16);
      this.#state = this.#left === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      this.#state = 'done';
    }
  }
}

export class ChunkedError extends Error {
  override readonly name = 'ChunkedError';
  readonly code = 'HPE_INVALID_CHUNK_SIZE';
  constructor(what: string) {
    super(`the upstream sent ${what}`);
  }
}
