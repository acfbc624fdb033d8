import { formatBytes, type SpaceFloor } from '../config/index.js';
import type { Digest } from '../oci/index.js';
import { diskSpace, type DiskSpace, type StorageLog } from '../storage/index.js';

export interface DiskRoomOptions {
  /** The storage directory: the file system whose free space counts. */
  readonly root: string;
  /** storage.minFree: free space the cache always leaves. */
  readonly minFree: SpaceFloor;
  readonly log: StorageLog;
  readonly now: () => number;
  /** The file system's answer; statfs by default. */
  readonly space?: (root: string) => Promise<DiskSpace>;
}

/** What the disk can take now, for one decision. */
export interface Room {
  /** Bytes the cache may still write: free space above the floor, less what writes in flight will add. */
  readonly bytes: number;
  readonly free: number;
  readonly floor: number;
}

/** A blob the disk could not take lately. */
interface NoFit {
  /** Bytes it needs: its size, or at least the bytes written when the disk filled. */
  size: number;
  /** The last time it did not fit. */
  at: number;
  /** Not tried again before this, whatever statfs says (it said there was room the last time, too). */
  retryAt: number;
}

/** How long a blob that did not fit is remembered after the last time it did not. */
const FORGET_MS = 10 * 60_000;
/** After the disk filled in the middle of a download, how long that blob is not tried again. */
const RETRY_AFTER_FILLED_MS = 60_000;
const MAX_REMEMBERED = 1000;
const WARN_INTERVAL_MS = 60_000;
const UNMEASURED: Room = { bytes: Number.POSITIVE_INFINITY, free: Number.POSITIVE_INFINITY, floor: 0 };

/**
 * The file system as a second limit beside storage.maxSize: room is what statfs reports free above
 * storage.minFree, and a blob that does not fit (up front, or when the disk filled mid-download) is
 * remembered, so its next pulls stream without caching from the first byte instead of filling the
 * disk again. While one is remembered and the disk has not made room for it, the disk is the limit:
 * readiness and status say so. One warning a minute at most.
 */
export class DiskRoom {
  readonly #root: string;
  readonly #minFree: SpaceFloor;
  readonly #log: StorageLog;
  readonly #now: () => number;
  readonly #space: (root: string) => Promise<DiskSpace>;
  readonly #noFit = new Map<Digest, NoFit>();
  #lastWarn = Number.NEGATIVE_INFINITY;

  constructor(options: DiskRoomOptions) {
    this.#root = options.root;
    this.#minFree = options.minFree;
    this.#log = options.log;
    this.#now = options.now;
    this.#space = options.space ?? diskSpace;
  }

  /** Room now, `pending` bytes still to come from writes in flight; unbounded when statfs fails (caching then meets the disk itself). */
  async measure(pending: number): Promise<Room> {
    let space: DiskSpace;
    try {
      space = await this.#space(this.#root);
    } catch {
      return UNMEASURED;
    }
    const floor = this.#minFree.kind === 'bytes' ? this.#minFree.bytes : Math.ceil((space.size * this.#minFree.percent) / 100);
    return { bytes: space.free - floor - pending, free: space.free, floor };
  }

  /**
   * Whether `digest` streams without caching now: it did not fit lately and the disk has not made
   * room since (`refresh`: this is a pull, so it is remembered on from now).
   */
  holds(digest: Digest, room: Room, refresh = true): boolean {
    const entry = this.#live(digest);
    if (entry === undefined) return false;
    if (this.#now() < entry.retryAt || entry.size > room.bytes) {
      if (refresh) entry.at = this.#now();
      return true;
    }
    this.#noFit.delete(digest);
    return false;
  }

  /** `digest`, needing `size` bytes, did not fit in `room` before its download started. */
  noRoom(digest: Digest, size: number, room: Room): void {
    const now = this.#now();
    const fields = { digest, size, free: room.free, minFree: room.floor };
    if (this.#remember(digest, size, now) && now - this.#lastWarn >= WARN_INTERVAL_MS) {
      this.#lastWarn = now;
      this.#log('warn', fields, 'no room on the disk: streaming without caching (storage.maxSize allows more than the disk holds above storage.minFree)');
    } else {
      this.#log('debug', fields, 'no room on the disk: streaming without caching');
    }
  }

  /** The disk filled while `digest` was written, `written` bytes in: it is not tried again for a while. */
  filled(digest: Digest, size: number, written: number, error: Error): void {
    const now = this.#now();
    this.#remember(digest, size, now + RETRY_AFTER_FILLED_MS);
    this.#log('warn', { digest, size, written, error: error.message }, 'the disk ran out of room mid-download: streaming the rest to its clients without caching');
  }

  /** A blob remembered as not fitting turned out to need `size` bytes (its whole size, once streamed). */
  needs(digest: Digest, size: number): void {
    const entry = this.#live(digest);
    if (entry !== undefined) entry.size = Math.max(entry.size, size);
  }

  /** Returns whether the digest is new to the memory. */
  #remember(digest: Digest, size: number, retryAt: number): boolean {
    const known = this.#live(digest);
    this.#noFit.delete(digest);
    if (this.#noFit.size >= MAX_REMEMBERED) this.#noFit.delete(this.#noFit.keys().next().value as Digest);
    this.#noFit.set(digest, { size: Math.max(size, known?.size ?? 0), at: this.#now(), retryAt: Math.max(retryAt, known?.retryAt ?? retryAt) });
    return known === undefined;
  }

  /** Why the disk is the limit now, one line for readiness and status; undefined while it is not. */
  async limit(pending: number): Promise<string | undefined> {
    if (this.#noFit.size === 0) return undefined;
    const room = await this.measure(pending);
    const held = [...this.#noFit.keys()].filter((digest) => this.holds(digest, room, false)).map((digest) => this.#noFit.get(digest)!.size);
    if (held.length === 0) return undefined;
    const free = Number.isFinite(room.free) ? `${formatBytes(room.free)} free, storage.minFree keeps ${formatBytes(room.floor)}` : 'free space unknown';
    return `no room on the disk for ${held.length} blob(s), the largest ${formatBytes(Math.max(...held))}: serving them without caching (${free})`;
  }

  #live(digest: Digest): NoFit | undefined {
    const entry = this.#noFit.get(digest);
    if (entry !== undefined && this.#now() - entry.at > FORGET_MS) {
      this.#noFit.delete(digest);
      return undefined;
    }
    return entry;
  }
}
