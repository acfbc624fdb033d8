/**
 * HTTP/1.1 framing of a response read straight off a socket (direct-get.ts): the request head, the
 * response head, how the body ends, and the chunked coding. Failures carry the codes undici gives.
 */

/**
 * A failure with the code undici gives the same failure, so retries, messages and the missing
 * client certificate check (dispatchers.ts) treat both clients alike.
 */
export class DirectGetError extends Error {
  override readonly name = 'DirectGetError';
  constructor(
    readonly code: string,
    message: string,
    readonly socket?: { readonly bytesRead: number },
  ) {
    super(message);
  }
}

/** The most a response head may take: more is a server that does not speak HTTP, or an attack. */
export const MAX_HEAD_BYTES = 64 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The request head of a direct GET: `Connection: close`, the body ends the connection. */
export function requestHead(url: URL, headers: Readonly<Record<string, string>>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    // Values come from config and tokens: a line break would start a header of someone else's choosing.
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) throw new DirectGetError('UND_ERR_INVALID_ARG', `invalid request header ${JSON.stringify(name)}`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}connection: close\r\n\r\n`;
}

/** How the body of a response ends: after a length, at the last chunk, or with the connection. */
export type Framing = { kind: 'length'; left: number } | { kind: 'chunked'; decoder: ChunkedDecoder } | { kind: 'close' };

/** A response head (the status line and header lines, without the blank line). */
export function parseHead(text: string): { status: number; headers: Record<string, string | string[]> } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (m === null) throw invalid('a status line that is not HTTP/1.x');
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    // No obsolete line folding, no space before the colon (RFC 9112 §5): a smuggler's tools.
    if (colon <= 0 || !TOKEN.test(name)) throw invalid('a malformed header line');
    const value = line.slice(colon + 1).trim();
    const seen = headers[name];
    headers[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return { status: Number(m[1]), headers };
}

/** How a response's body is framed (RFC 9112 §6.3). */
export function framing(status: number, headers: Record<string, string | string[]>): Framing {
  if (status === 204 || status === 304) return { kind: 'length', left: 0 };
  const te = [headers['transfer-encoding'] ?? []].flat().join(',').toLowerCase();
  if (te !== '') {
    // Chunked last means chunked framing, whatever Content-Length says (RFC 9112 §6.3).
    return /(^|,)\s*chunked\s*$/.test(te) ? { kind: 'chunked', decoder: new ChunkedDecoder() } : { kind: 'close' };
  }
  const lengths = new Set([headers['content-length'] ?? []].flat().flatMap((v) => v.split(',')).map((v) => v.trim()));
  if (lengths.size === 0) return { kind: 'close' };
  const [length] = lengths;
  if (lengths.size > 1 || !/^\d{1,15}$/.test(length!)) throw invalid('a Content-Length that is not one number');
  return { kind: 'length', left: Number(length) };
}

export function invalid(what: string): DirectGetError {
  return new DirectGetError('HPE_INVALID_RESPONSE', `the upstream sent ${what}`);
}

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
      if (this.#line.length > MAX_LINE) throw chunkError('a chunk line too long');
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
      if (line !== '') throw chunkError('chunk data longer than its size');
      this.#state = 'size';
    } else if (this.#state === 'size') {
      const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (m === null) throw chunkError('a malformed chunk size');
      this.#left = parseInt(m[1]!, 16);
      this.#state = this.#left === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      this.#state = 'done';
    }
  }
}

function chunkError(what: string): DirectGetError {
  return new DirectGetError('HPE_INVALID_CHUNK_SIZE', `the upstream sent ${what}`);
}
