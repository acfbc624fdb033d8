import type { Readable } from 'node:stream';
import { formatSizeLike, type SpaceFloor } from '../config/index.js';
import type { Digest } from '../oci/index.js';
import { errorCode } from '../observability/index.js';
import { CacheIndex, type CacheIndexObserver, type RemoveResult, type Reservation } from './cache-index.js';
import { StorageError, type BlobInfo, type BlobStore, type BlobWriter, type ByteSpan, type DiskSpace, type EnumerableBlobStore, type StorageHealth, type StorageLog } from '../storage/index.js';
import { AccountedWriter, type WriteAccount } from './accounted-writer.js';
import { DiskRoom } from './disk-room.js';
import { reconcile } from './reconcile.js';
import { IndexSnapshot } from './index-snapshot.js';

/** The pinned content already cached does not fit the budget: a start-up error, not a runtime surprise. */
export class PinBudgetError extends StorageError {
  override readonly name = 'PinBudgetError';
  constructor(
    readonly pinnedBytes: number,
    readonly maxSize: number,
  ) {
    super(`the pinned content already cached, ${formatSizeLike(pinnedBytes, maxSize)}, does not fit in storage.maxSize ${formatSizeLike(maxSize, maxSize)}: raise storage.maxSize or narrow storage.pin`);
  }
}

export interface BlobCacheOptions {
  readonly store: EnumerableBlobStore;
  readonly root: string;
  readonly maxSize: number;
  /** storage.minFree: what the cache leaves free on its file system whatever maxSize allows (default none). */
  readonly minFree?: SpaceFloor;
  /** The file system's free space and size; statfs by default. */
  readonly diskSpace?: (root: string) => Promise<DiskSpace>;
  /** Whether `<upstream>/<repository>` is pinned (mirror's PinSet.matchesKey). */
  readonly isPinned: (repoKey: string) => boolean;
  readonly observer: CacheIndexObserver;
  readonly health: StorageHealth;
  /** Drops a blob's metadata record after its file was deleted. */
  readonly forget: (digest: Digest) => Promise<void>;
  /** The size the metadata recorded at commit, if any: adopting a file then needs no stat. */
  readonly recordedSize?: (digest: Digest) => Promise<number | undefined>;
  readonly log: StorageLog;
  /** How often a changed index is written to disk. Default 30 s. */
  readonly flushIntervalMs?: number;
  readonly now?: () => number;
}

export interface RecoverReport {
  readonly removedTempFiles: number;
  readonly blobs: number;
  readonly bytes: number;
  readonly pinnedBytes: number;
  readonly adopted: number;
  readonly dropped: number;
}

/**
 * The blob store inside its budget: every read holds the digest (never deleted under a reader),
 * every download first reserves its Content-Length (evicting LRU blobs to make room, in the budget
 * and on the disk), commits are accounted, and what cannot be cached (too big, no room, storage
 * degraded) gets no writer: the caller streams it without keeping it. Wraps a file store; the
 * mirror sees only the BlobStore interface.
 */
export class BlobCache implements BlobStore {
  readonly #index: CacheIndex;
  readonly #store: EnumerableBlobStore;
  readonly #snapshot: IndexSnapshot;
  readonly #health: StorageHealth;
  readonly #forget: (digest: Digest) => Promise<void>;
  readonly #recordedSize: (digest: Digest) => Promise<number | undefined>;
  readonly #log: StorageLog;
  readonly #flushIntervalMs: number;
  readonly #now: () => number;
  readonly #room: DiskRoom;
  /** Writes in flight: what they reserved but have not written yet is spoken for on the disk. */
  readonly #writing = new Set<AccountedWriter>();
  readonly #account: WriteAccount;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: BlobCacheOptions) {
    this.#store = options.store;
    this.#snapshot = new IndexSnapshot(options.root);
    this.#health = options.health;
    this.#forget = options.forget;
    this.#recordedSize = options.recordedSize ?? (async () => undefined);
    this.#log = options.log;
    this.#flushIntervalMs = options.flushIntervalMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    const minFree = options.minFree ?? { kind: 'bytes', bytes: 0 };
    this.#room = new DiskRoom({ root: options.root, minFree, log: this.#log, now: this.#now, space: options.diskSpace });
    this.#index = new CacheIndex({
      maxSize: options.maxSize,
      isPinned: options.isPinned,
      observer: options.observer,
      now: this.#now,
      deleteBlob: async (digest) => {
        await this.#store.delete(digest);
        await this.#forget(digest);
      },
      onDeleteError: (digest, error) => this.#log('warn', { digest, error: (error as Error).message }, 'deleting an evicted blob failed'),
    });
    this.#account = this.#writeAccount();
  }

  /**
   * Start-up: removes temp files, loads the index snapshot, reconciles it with the files, enforces
   * the budget and checks that the pinned content fits. Call after the metadata store is open.
   */
  async recover(): Promise<RecoverReport> {
    const { removedTempFiles } = await this.#store.recover();
    const snapshot = await this.#snapshot.load().catch(() => undefined);
    const result = await reconcile(await this.#store.digests(), snapshot, (d) => this.#sizeOf(d));
    this.#index.load(result.blobs);
    if (result.adopted > 0 || result.dropped.length > 0) this.#index.markDirty();
    for (const digest of result.dropped) await this.#forget(digest).catch(() => {});
    if (this.#index.pinnedBytes > this.#index.maxSize) throw new PinBudgetError(this.#index.pinnedBytes, this.#index.maxSize);
    this.#index.enforce();
    await this.#index.settled();
    this.#timer = setInterval(() => void this.flush(), this.#flushIntervalMs);
    this.#timer.unref();
    return {
      removedTempFiles,
      blobs: this.#index.count,
      bytes: this.#index.bytes,
      pinnedBytes: this.#index.pinnedBytes,
      adopted: result.adopted,
      dropped: result.dropped.length,
    };
  }

  /** Metadata first (an in-memory read for the embedded store), a stat only for files it does not know. */
  async #sizeOf(digest: Digest): Promise<BlobInfo | undefined> {
    const recorded = await this.#recordedSize(digest).catch(() => undefined);
    return recorded !== undefined ? { digest, size: recorded } : this.#store.stat(digest);
  }

  /** Writes the index snapshot if it changed. Never throws: a lost snapshot costs recency only. */
  flush(): Promise<void> {
    if (!this.#index.dirty) return this.#flushing ?? Promise.resolve();
    this.#flushing ??= this.#snapshot
      .save(this.#index.snapshot(), this.#now())
      .catch((error: unknown) => {
        if (!this.#health.report(error)) this.#log('warn', { error: (error as Error).message }, 'saving the cache index failed');
      })
      .finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  /** Resolves once the evictions and deletions decided so far have finished. */
  settled(): Promise<void> {
    return this.#index.settled();
  }

  /** Bytes of cached content that pins keep (never evicted). */
  get pinnedBytes(): number {
    return this.#index.pinnedBytes;
  }

  /**
   * The pins changed (a config reload): blobs are pinned or released by the new set. Everything
   * cached already fits the budget (which a reload does not change), so the pinned part does too.
   */
  repin(): void {
    this.#index.repin();
    this.#index.enforce();
  }

  /** The cached blobs eviction leaves alone: `cache gc` keeps them too. */
  pinnedDigests(): Digest[] {
    return this.#index.pinnedDigests();
  }

  /** Stops the flush timer and writes the last snapshot. Safe twice. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      await this.#index.settled();
      await this.#flushing;
      await this.flush();
    })();
    return this.#closed;
  }

  stat(digest: Digest): Promise<BlobInfo | undefined> {
    return this.#store.stat(digest);
  }

  async open(digest: Digest, span?: ByteSpan): Promise<Readable | undefined> {
    // Held before the first await: an eviction deciding meanwhile sees the reader.
    this.#index.acquire(digest);
    let stream: Readable | undefined;
    try {
      stream = await this.#store.open(digest, span);
    } catch (error) {
      this.#index.release(digest);
      throw error;
    }
    if (stream === undefined) {
      this.#index.release(digest);
      return undefined;
    }
    this.#index.touch(digest);
    stream.once('close', () => this.#index.release(digest));
    return stream;
  }

  async explainRefusal(expectedSize: number | undefined): Promise<string> {
    const degraded = this.#health.degraded;
    if (degraded !== undefined) return `the storage is not taking writes (${degraded.reason})`;
    const max = this.#index.maxSize;
    const pinned = this.#index.pinnedBytes;
    const size = expectedSize === undefined ? 'of unknown size' : formatSizeLike(expectedSize, max);
    if (expectedSize !== undefined && expectedSize > max - pinned) return `blob ${size} does not fit in storage.maxSize ${formatSizeLike(max, max)}; ${formatSizeLike(pinned, max)} pinned`;
    return `no room for blob ${size} now: other downloads hold the rest of storage.maxSize, or the disk is full down to storage.minFree`;
  }

  async begin(digest: Digest, expectedSize?: number): Promise<BlobWriter | undefined> {
    if (!(await this.#health.usable())) return undefined;
    const room = await this.#room.measure(this.#pending());
    if (this.#room.holds(digest, room)) return undefined;
    let reservation: Reservation | undefined;
    if (expectedSize !== undefined) {
      reservation = await this.#index.reserve(expectedSize, room.bytes);
      if (reservation === undefined) {
        if (expectedSize <= this.#index.maxSize && expectedSize > room.bytes) this.#room.noRoom(digest, expectedSize, room);
        else this.#log('debug', { digest, size: expectedSize, budget: this.#index.maxSize, pinnedBytes: this.#index.pinnedBytes }, 'no room in the cache budget: streaming without caching');
        return undefined;
      }
    } else if (room.bytes <= 0) {
      this.#room.noRoom(digest, 1, room);
      return undefined;
    }
    let writer: BlobWriter | undefined;
    try {
      writer = await this.#store.begin(digest, expectedSize);
    } catch (error) {
      reservation?.release();
      if (this.#health.report(error)) return undefined;
      throw error;
    }
    if (writer === undefined) {
      reservation?.release();
      return undefined;
    }
    const accounted = new AccountedWriter(writer, this.#account, reservation);
    this.#writing.add(accounted);
    return accounted;
  }

  /** Why the disk is the limit now (a blob did not fit lately), for readiness and status; undefined while it is not. */
  diskLimit(): Promise<string | undefined> {
    return this.#room.limit(this.#pending());
  }

  #pending(): number {
    let bytes = 0;
    for (const writer of this.#writing) bytes += writer.pending;
    return bytes;
  }

  #writeAccount(): WriteAccount {
    return {
      index: this.#index,
      health: this.#health,
      ended: (writer) => this.#writing.delete(writer),
      stopped: (writer, reason) => {
        const code = errorCode(reason);
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          this.#room.filled(writer.digest, writer.expectedSize ?? writer.bytesWritten, writer.bytesWritten, reason);
          return;
        }
        if (!this.#health.report(reason)) this.#log('warn', { digest: writer.digest, error: reason.message, code }, 'writing to the cache failed mid-download: streaming the rest to its clients without caching');
      },
      streamed: (writer, size) => this.#room.needs(writer.digest, size),
    };
  }

  /** BlobStore.delete: an operator's delete; refuses a blob in use. Pinned blobs go too (force). */
  async delete(digest: Digest): Promise<boolean> {
    return (await this.#index.remove(digest, { force: true })) === 'removed';
  }

  /**
   * The safe delete for `cache gc` / `cache prune`: 'in-use' while any client reads it,
   * 'pinned' for pinned content unless `force`, 'absent' if not cached; 'removed' after the file
   * and its metadata record are gone and the totals were updated.
   */
  remove(digest: Digest, options: { force?: boolean } = {}): Promise<RemoveResult> {
    return this.#index.remove(digest, options);
  }

  /** A manifest served for this repository references these digests (itself included): pins follow them. */
  recordRepository(upstream: string, repository: string, digests: readonly Digest[]): void {
    this.#index.addRepository(`${upstream}/${repository}`, digests);
  }

  /** A read served from memory (a hot manifest): recency only. */
  touch(digest: Digest): void {
    this.#index.touch(digest);
  }

  list(): AsyncIterable<BlobInfo> {
    return this.#store.list();
  }
}
