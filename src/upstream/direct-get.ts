import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { slabs, type SlabReader } from '../buffers/index.js';
import { Limiter } from '../concurrency/index.js';
import { DirectGetError, framing, invalid, MAX_HEAD_BYTES, parseHead, requestHead, type Framing } from './http1.js';
import type { Headers } from './responses.js';

/** What a direct GET needs of the upstream's settings: the same TLS choices and timeouts as its undici pools. */
export interface DirectGetSettings {
  readonly tls: { readonly ca?: string[]; readonly cert?: string; readonly key?: string; readonly rejectUnauthorized?: boolean };
  readonly connectMs: number;
  readonly headersMs: number;
  readonly bodyIdleMs: number;
  /** Direct GETs open at once per origin, as the undici pools' `connections`; more wait their turn. */
  readonly connections: number;
}

export interface DirectResponse {
  readonly statusCode: number;
  readonly headers: Headers;
  /** Chunks are views of pooled slabs (buffers/slab-pool.ts), each holding one reference its reader takes over. */
  readonly body: Readable;
}

/** Read-ahead a body keeps before the socket stops reading: a few reads, each up to a slab. */
const BODY_HIGH_WATER = 4;
/** Landed bytes pushed at once rather than at the end of the loop turn: a large read goes on at once. */
const HAND_OVER_BYTES = 256 * 1024;

/**
 * Blob GETs on their own connections, read straight into pooled slabs through `onread`: no
 * buffer allocated per socket read, no copy into a parser's memory or into slabs afterwards
 * (undici does all three: taking in 512 MiB on loopback cost it about 0.5 CPU s, a raw socket
 * reading into one buffer 0.15 s; BENCHMARKS.md, "Blob bodies read straight into slabs"). Only
 * for the one request whose body is large, and only where no proxy is in the way; everything
 * else stays on undici's pools. Each GET sends `Connection: close`: one connection per blob, and
 * no pool to keep honest.
 */
export class DirectGets {
  readonly #open = new Set<Socket>();
  readonly #limits = new Map<string, Limiter>();
  #destroyed = false;

  constructor(private readonly settings: DirectGetSettings) {}

  get(url: URL, headers: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<DirectResponse> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (this.#destroyed) return Promise.reject(destroyedError());
    let head: string;
    try {
      head = requestHead(url, headers);
    } catch (err) {
      return Promise.reject(err);
    }
    const { origin } = url;
    let limiter = this.#limits.get(origin);
    if (limiter === undefined) this.#limits.set(origin, (limiter = new Limiter(this.settings.connections)));
    return new Promise((resolve, reject) => {
      // The slot is held until the connection closes: the body is read after this promise resolved.
      const held = limiter.run(
        () =>
          new Promise<void>((closed) => {
            // A turn that comes after the client left, or after the upstream was closed, connects nowhere.
            const refusal = signal?.aborted === true ? signal.reason : this.#destroyed ? destroyedError() : undefined;
            if (refusal !== undefined) {
              reject(refusal);
              closed();
              return;
            }
            try {
              new Exchange(url, head, this.settings, this.#open, signal, resolve, reject, closed);
            } catch (err) {
              // Options the socket refused at once (an unusable key or CA): no connection to wait for.
              reject(err);
              closed();
            }
          }),
      );
      void held.finally(() => {
        if (limiter.pending === 0 && this.#limits.get(origin) === limiter) this.#limits.delete(origin);
      });
    });
  }

  /** Aborts every GET in flight or waiting for its turn (a closing upstream); later ones fail at once. */
  destroy(): void {
    this.#destroyed = true;
    for (const socket of this.#open) socket.destroy(destroyedError());
  }
}

function destroyedError(): DirectGetError {
  return new DirectGetError('UND_ERR_DESTROYED', 'the upstream client was closed');
}

/** One GET on one socket: the head parsed from the first reads, then the body handed on as slab views. */
class Exchange {
  readonly #socket: Socket;
  readonly #reader: SlabReader = slabs.reader();
  /** The head's bytes so far (copies: the head is never handed on, so it holds no slab). */
  #head: Buffer | undefined;
  #body: DirectBody | undefined;
  #framing: Framing | undefined;
  #done = false;
  #paused = false;
  /** Body bytes landed and held, not yet pushed (`#handOver`). */
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #handOverQueued = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => this.#fail(this.signal?.reason);

  constructor(
    url: URL,
    request: string,
    private readonly settings: DirectGetSettings,
    open: Set<Socket>,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (res: DirectResponse) => void,
    private readonly reject: (err: unknown) => void,
    closed: () => void,
  ) {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const https = url.protocol === 'https:';
    const port = Number(url.port !== '' ? url.port : https ? 443 : 80);
    const onread: OnReadOpts = { buffer: () => this.#reader.space(), callback: (n) => this.#landed(this.#reader.landed(n)) };
    // tls.connect takes `onread` as net.connect does (documented); its type does not say so.
    const secure: ConnectionOptions & { onread: OnReadOpts } = { host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ALPNProtocols: ['http/1.1'], ...settings.tls, onread };
    this.#socket = https ? tlsConnect(secure) : netConnect({ host, port, onread });
    open.add(this.#socket);
    this.#arm(settings.connectMs, 'UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error');
    this.#socket.once(https ? 'secureConnect' : 'connect', () => {
      this.#arm(settings.headersMs, 'UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error');
      this.#socket.write(request);
    });
    this.#socket.on('timeout', () => this.#fail(new DirectGetError('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error')));
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => {
      open.delete(this.#socket);
      closed();
      this.#reader.close();
      this.#disarm();
      signal?.removeEventListener('abort', this.#onAbort);
      // The end of a body without a length is the end of the connection.
      if (this.#framing?.kind === 'close') this.#finish();
      else this.#fail(new DirectGetError('UND_ERR_SOCKET', 'other side closed', { bytesRead: this.#socket.bytesRead }));
    });
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** The consumer wants more: read on, with the idle timeout running again. */
  resume(): void {
    if (!this.#paused || this.#done) return;
    this.#paused = false;
    this.#socket.setTimeout(this.settings.bodyIdleMs);
    this.#socket.resume();
  }

  close(err: Error | null): void {
    this.#done = true;
    this.#socket.destroy(err ?? undefined);
  }

  /** Bytes that landed in a slab; false stops the socket reading until `resume`. */
  #landed(data: Buffer): boolean {
    if (this.#done) return false;
    try {
      if (this.#body === undefined) {
        const rest = this.#takeHead(data);
        if (rest === undefined || this.#done) return !this.#done;
        data = rest;
      }
      return this.#feed(data);
    } catch (err) {
      this.#fail(err);
      return false;
    }
  }

  /** Gathers the head; once it is complete, answers and returns the bytes after it (a view of `data`). */
  #takeHead(data: Buffer): Buffer | undefined {
    const all = this.#head === undefined ? Buffer.from(data) : Buffer.concat([this.#head, data]);
    const end = all.indexOf('\r\n\r\n');
    if ((end < 0 ? all.length : end) > MAX_HEAD_BYTES) throw invalid(`a response head over ${MAX_HEAD_BYTES} bytes`);
    if (end < 0) {
      this.#head = all;
      return undefined;
    }
    this.#head = undefined;
    const { status, headers } = parseHead(all.toString('latin1', 0, end));
    const after = data.subarray(data.length - (all.length - end - 4));
    if (status >= 100 && status < 200) {
      // An interim answer (103 Early Hints): the real one follows.
      return after.length === 0 ? undefined : this.#takeHead(after);
    }
    this.#framing = framing(status, headers);
    this.#disarm();
    this.#socket.setTimeout(this.settings.bodyIdleMs);
    this.#body = new DirectBody(this);
    this.resolve({ statusCode: status, headers, body: this.#body });
    return after;
  }

  #feed(data: Buffer): boolean {
    const framing = this.#framing!;
    const take = (view: Buffer): void => {
      if (view.length === 0) return;
      this.#batch.push(this.#reader.hold(view));
      this.#batchBytes += view.length;
    };
    if (framing.kind === 'length') {
      const n = Math.min(framing.left, data.length);
      take(data.subarray(0, n));
      framing.left -= n;
      if (framing.left === 0) this.#finish();
    } else if (framing.kind === 'chunked') {
      if (framing.decoder.feed(data, take)) this.#finish();
    } else {
      take(data);
    }
    if (this.#batchBytes >= HAND_OVER_BYTES) this.#handOver();
    else if (this.#batch.length > 0 && !this.#handOverQueued) {
      this.#handOverQueued = true;
      setImmediate(this.#handOverSoon);
    }
    return !this.#paused && !this.#done;
  }

  /**
   * Pushes what landed since the last hand-over, joined where it sits side by side in a slab: a TLS
   * socket reads one 16 KiB record at a time, and each push costs the reader a turn of its loop.
   */
  #handOver(): void {
    if (this.#batch.length === 0 || this.#body === undefined) return;
    let more = true;
    for (const view of slabs.join(this.#batch)) more = this.#body.push(view) && more;
    this.#batch = [];
    this.#batchBytes = 0;
    if (!more && !this.#done) {
      // The consumer is behind (the next read stops the socket): its own pace is not an idle upstream.
      this.#paused = true;
      this.#socket.setTimeout(0);
    }
  }

  readonly #handOverSoon = (): void => {
    this.#handOverQueued = false;
    if (!this.#done) this.#handOver();
  };

  #finish(): void {
    if (this.#done) return;
    this.#handOver();
    this.#done = true;
    this.#body?.push(null);
    this.#socket.destroy();
  }

  #fail(err: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const error = err instanceof Error ? err : new DirectGetError('UND_ERR_ABORTED', String(err));
    if (this.#body === undefined) this.reject(error);
    else this.#body.destroy(error);
    this.#socket.destroy();
  }

  #arm(ms: number, code: string, message: string): void {
    this.#disarm();
    this.#timer = setTimeout(() => this.#fail(new DirectGetError(code, message)), ms);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The body: slab views in object mode, so a read never joins two of them into a fresh allocation. */
class DirectBody extends Readable {
  constructor(private readonly exchange: Exchange) {
    super({ objectMode: true, highWaterMark: BODY_HIGH_WATER });
    // The rest of the head's read is fed before the caller can listen: a failure there must wait for
    // its reader (an iterator over an errored stream throws the error), not crash the process.
    this.on('error', () => {});
  }

  override _read(): void {
    this.exchange.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.exchange.close(err);
    callback(err);
  }
}

