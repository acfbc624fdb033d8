import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import { failedStream, SizeMismatchError, StorageError, type BlobInfo, type BlobWriter, type ByteSpan, type Verifier } from '../storage/index.js';

/**
 * A download that keeps nothing, for when the store gives no writer (a blob larger than the whole
 * budget, no room can be made, storage degraded): bytes go straight to the clients that follow it,
 * verified like a cached download (the newest chunk is held back until the digest matched, so a
 * mismatch ends every response short). The source is read at the pace of the slowest follower
 * (there is no file to buffer in), and once every follower left the next write fails, so the
 * source's GET stops. Followers must join before the first byte: the mirror starts a new download
 * for a later client.
 */
export class PassThroughWriter implements BlobWriter {
  readonly #verifier: Verifier;
  /** Bytes received (hashed). */
  #written = 0;
  /** Bytes handed to followers: a client joining after the first one cannot be served. */
  #fed = 0;
  #held: { buf: Buffer; start: number } | undefined;
  readonly #followers = new Set<PassThroughFollower>();
  #hadFollowers = false;
  #state: 'writing' | 'committed' | 'aborted' = 'writing';
  #abortReason: Error | undefined;

  constructor(
    readonly digest: Digest,
    readonly expectedSize: number | undefined,
    verifier: Verifier,
  ) {
    this.#verifier = verifier;
  }

  /** It never meant to keep the bytes (the download's BlobTarget says so), so it never stops. */
  readonly stoppedCaching = undefined;

  /** Bytes already handed to followers (the held-back chunk excluded): above 0, nobody can join. */
  get bytesWritten(): number {
    return this.#fed;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#state !== 'writing') throw this.#abortReason ?? new StorageError(`write of ${this.digest} is closed`);
    // Feeding the first bytes closes the door to new followers: with nobody following by then (all
    // left, or none came, as for a sync), the rest of the upstream GET would go nowhere.
    if (this.#followers.size === 0 && (this.#hadFollowers || this.#held !== undefined)) {
      throw new StorageError(`no client follows the pass-through download of ${this.digest}`);
    }
    const next = this.#written + chunk.length;
    if (this.expectedSize !== undefined && next > this.expectedSize) {
      const error = new SizeMismatchError(this.expectedSize, next);
      await this.abort(error);
      throw error;
    }
    this.#verifier.update(chunk);
    const out = this.#held;
    this.#held = { buf: chunk, start: this.#written };
    this.#written = next;
    if (out !== undefined) await this.#feed(out.buf, out.start);
    await this.#verifier.room();
  }

  /** Hands a chunk to every follower and waits for the slow ones to drain (or leave). */
  async #feed(buf: Buffer, start: number): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const f of this.#followers) {
      if (!f.feed(buf, start)) waits.push(Promise.race([once(f, 'drain'), once(f, 'close')]).catch(() => {}));
    }
    this.#fed = start + buf.length;
    await Promise.all(waits);
  }

  follow(span?: ByteSpan): Readable {
    // After commit nothing is left to read either (an empty blob feeds no byte, so check the state).
    if (this.#state !== 'writing' || this.#fed > 0) {
      return failedStream(this.#abortReason ?? new StorageError(`the pass-through download of ${this.digest} already started`));
    }
    const follower = new PassThroughFollower(span?.start ?? 0, span ? span.end + 1 : Number.POSITIVE_INFINITY);
    this.#hadFollowers = true;
    this.#followers.add(follower);
    follower.once('close', () => this.#followers.delete(follower));
    return follower;
  }

  async commit(): Promise<BlobInfo> {
    if (this.#state !== 'writing') throw this.#abortReason ?? new StorageError(`write of ${this.digest} is closed`);
    try {
      await this.#verifier.finish();
    } catch (error) {
      await this.abort(error as Error);
      throw error;
    }
    // Aborted while the verdict was pending: its followers already failed.
    if (this.#aborted()) throw this.#abortReason ?? new StorageError(`write of ${this.digest} is closed`);
    this.#state = 'committed';
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) await this.#feed(held.buf, held.start);
    for (const f of this.#followers) f.finish();
    return { digest: this.digest, size: this.#written };
  }

  /** A method, not a field test: the state changes across awaits, which narrowing cannot see. */
  #aborted(): boolean {
    return this.#state === 'aborted';
  }

  async abort(reason: Error): Promise<void> {
    if (this.#state !== 'writing') return;
    this.#state = 'aborted';
    this.#abortReason = reason;
    this.#held = undefined;
    this.#verifier.discard();
    for (const f of [...this.#followers]) f.destroy(reason);
  }
}

/** One client's view: the bytes of its span, the span's last byte held back until finish(). */
class PassThroughFollower extends PassThrough {
  #pending: Buffer | undefined;

  readonly #start: number;
  /** Exclusive. */
  readonly #stop: number;

  constructor(start: number, stop: number) {
    super();
    this.#start = start;
    this.#stop = stop;
  }

  /** Returns false when the client is behind (wait for 'drain'). */
  feed(buf: Buffer, at: number): boolean {
    if (this.destroyed) return true;
    const from = Math.max(this.#start, at);
    const to = Math.min(this.#stop, at + buf.length);
    if (to <= from) return true;
    let piece = buf.subarray(from - at, to - at);
    if (to === this.#stop) {
      this.#pending = piece.subarray(piece.length - 1);
      piece = piece.subarray(0, piece.length - 1);
    }
    return piece.length === 0 ? true : this.write(piece);
  }

  finish(): void {
    if (this.destroyed) return;
    this.end(this.#pending);
  }
}
