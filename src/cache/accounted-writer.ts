import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { BlobInfo, BlobWriter, ByteSpan, StorageHealth } from '../storage/index.js';
import type { CacheIndex, Reservation } from './cache-index.js';

/** What an accounted write reports to the cache that began it. */
export interface WriteAccount {
  readonly index: CacheIndex;
  readonly health: StorageHealth;
  /** The write no longer adds bytes to the disk: committed, aborted, or caching stopped. */
  ended(writer: AccountedWriter): void;
  /** Caching stopped mid-write: the file took no more (`stoppedCaching`). */
  stopped(writer: AccountedWriter, reason: Error): void;
  /** A write whose caching stopped streamed the whole blob: `size` is what it would have needed. */
  streamed(writer: AccountedWriter, size: number): void;
}

/** A real write, accounted: followers hold the digest, commit joins the index, disk errors degrade. */
export class AccountedWriter implements BlobWriter {
  #ended = false;
  #stopReported = false;

  constructor(
    private readonly inner: BlobWriter,
    private readonly account: WriteAccount,
    private readonly reservation: Reservation | undefined,
  ) {}

  get digest(): Digest {
    return this.inner.digest;
  }
  get bytesWritten(): number {
    return this.inner.bytesWritten;
  }
  get expectedSize(): number | undefined {
    return this.inner.expectedSize;
  }
  get stoppedCaching(): Error | undefined {
    return this.inner.stoppedCaching;
  }

  /** Reserved bytes this write has yet to put on the disk. */
  get pending(): number {
    return this.#ended || this.reservation === undefined ? 0 : Math.max(0, this.reservation.size - this.inner.bytesWritten);
  }

  async write(chunk: Buffer): Promise<void> {
    try {
      await this.inner.write(chunk);
    } catch (error) {
      this.#failed(error);
      throw error;
    }
    this.#noticeStop();
  }

  follow(span?: ByteSpan): Readable {
    const stream = this.inner.follow(span);
    this.account.index.acquire(this.inner.digest);
    stream.once('close', () => this.account.index.release(this.inner.digest));
    return stream;
  }

  async commit(): Promise<BlobInfo> {
    let info: BlobInfo;
    try {
      info = await this.inner.commit();
    } catch (error) {
      this.#failed(error);
      throw error;
    }
    this.#noticeStop();
    if (this.inner.stoppedCaching === undefined) this.account.index.add(info.digest, info.size, this.reservation);
    else this.account.streamed(this, info.size);
    this.#end();
    return info;
  }

  async abort(reason: Error): Promise<void> {
    this.#end();
    await this.inner.abort(reason);
  }

  /** The write failed: after caching stopped that is its reason (a full disk is not "not writable"). */
  #failed(error: unknown): void {
    if (this.inner.stoppedCaching !== undefined) this.#noticeStop();
    else this.account.health.report(error);
    this.#end();
  }

  #noticeStop(): void {
    const reason = this.inner.stoppedCaching;
    if (reason === undefined || this.#stopReported) return;
    this.#stopReported = true;
    this.#end();
    this.account.stopped(this, reason);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.reservation?.release();
    this.account.ended(this);
  }
}
