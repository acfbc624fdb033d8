import type { RecentChunk } from './blob-follower.js';
import { slabs } from '../../buffers/index.js';

/**
 * The chunks a writer received last, oldest first and contiguous: a follower takes its bytes from
 * here before they are on disk, and instead of reading them back once they are; once the file stops
 * taking bytes (a full disk) they are the only copy, kept until every follower has read past them.
 * Each chunk pushed holds a slab reference (blob-writer.ts), released when it is dropped here.
 */
export class RecentChunks {
  #chunks: RecentChunk[] = [];

  /** A chunk that continues the newest one in the same slab joins it: followers then send larger pieces. */
  push(buf: Buffer, start: number): void {
    if (buf.length === 0) return;
    const last = this.#chunks[this.#chunks.length - 1];
    if (last !== undefined) {
      const joined = slabs.join([last.buf, buf]);
      if (joined.length === 1) {
        this.#chunks[this.#chunks.length - 1] = { buf: joined[0]!, start: last.start };
        return;
      }
    }
    this.#chunks.push({ buf, start });
  }

  /** The chunk holding byte `pos`, or undefined. */
  find(pos: number): RecentChunk | undefined {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid]!;
      if (pos < chunk.start) hi = mid - 1;
      else if (pos >= chunk.start + chunk.buf.length) lo = mid + 1;
      else return chunk;
    }
    return undefined;
  }

  /**
   * Keeps the newest chunks that hold at least `bytes` (all of them if they hold fewer), and every
   * chunk that ends past `onDisk`: those bytes are nowhere else yet.
   */
  keepNewest(bytes: number, onDisk = Number.POSITIVE_INFINITY): void {
    let held = 0;
    let keep = this.#chunks.length;
    while (keep > 0) {
      const chunk = this.#chunks[keep - 1]!;
      if (held >= bytes && chunk.start + chunk.buf.length <= onDisk) break;
      held += chunk.buf.length;
      keep -= 1;
    }
    if (keep > 0) this.#drop(keep);
  }

  /** Drops the chunks that end at or before `pos`. */
  dropBefore(pos: number): void {
    let n = 0;
    while (n < this.#chunks.length && this.#chunks[n]!.start + this.#chunks[n]!.buf.length <= pos) n++;
    if (n > 0) this.#drop(n);
  }

  clear(): void {
    this.#drop(this.#chunks.length);
  }

  #drop(count: number): void {
    for (const chunk of this.#chunks.splice(0, count)) slabs.release(chunk.buf);
  }
}
