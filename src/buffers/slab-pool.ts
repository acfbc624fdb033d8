/**
 * Bytes per slab. Above glibc's mmap threshold (128 KiB, held there by `npm start`'s
 * MALLOC_TRIM_THRESHOLD_, which turns off its dynamic raise), so a slab let go is unmapped whole
 * instead of leaving a hole in the main heap that glibc never gives back. 1 MiB, as large as a
 * warm stream's reads: followers that keep up send joined pieces of that size (16 concurrent cold
 * GETs: 0.87× the time and 0.82× the CPU of 256 KiB slabs). A follower reading small hands out
 * copies (blob-follower.ts), so a stalled client still pins no slab.
 */
export const SLAB_BYTES = 1024 * 1024;
/** Free slabs kept for the next download (8 MiB); an idle server drops them (`drain`). */
const KEEP_FREE = 8;
/** A socket reader moves to a fresh slab when less than this is left: a read never gets a sliver. */
const MIN_READ = 64 * 1024;

interface Slab {
  readonly buf: Buffer;
  /** Views handed out and not released, plus one while it is the slab being filled. */
  refs: number;
}

/**
 * Reusable memory for the bytes of downloads in flight. Upstream chunks are copied in as they
 * arrive, so the socket's own read buffers die young instead of living as long as the write
 * window, the recent chunks and the followers' sends (after one cold GET glibc's main heap no
 * longer grows), and chunks that land side by side can be joined, so followers take larger
 * pieces (16 concurrent cold GETs: 0.80× the time; BENCHMARKS.md, "Download bytes in reusable
 * slabs"). A direct upstream GET (upstream/direct-get.ts) reads its socket straight into slabs of
 * its own (`reader`), so neither the socket's allocation nor the copy happens at all.
 *
 * A slab is reused only after every view of it was released, so each holder releases the views
 * it holds only once nothing (a pending write, a socket) still reads them. References are counted
 * per view object too, so releasing a view more often than it was taken is ignored rather than
 * taken off another holder's count. A view never released is not an error: its slab is just not
 * reused, and the GC frees it as before.
 */
export class SlabPool {
  readonly #free: Buffer[] = [];
  readonly #slabs = new WeakMap<ArrayBufferLike, Slab>();
  /** References held through each view object handed out or retained. */
  readonly #held = new WeakMap<Buffer, number>();
  #current: Slab | undefined;
  #used = 0;

  /** A pooled copy of `chunk`, holding one reference; release() it once done. */
  copy(chunk: Uint8Array): Buffer {
    // An empty view would hold its slab for good: nobody keeps one to release it.
    if (chunk.length === 0 || chunk.length > SLAB_BYTES) return Buffer.from(chunk);
    let slab = this.#current;
    if (slab === undefined || this.#used + chunk.length > SLAB_BYTES) {
      if (slab !== undefined) this.#unref(slab);
      slab = this.#current = this.#take();
      this.#used = 0;
    }
    const at = this.#used;
    slab.buf.set(chunk, at);
    this.#used += chunk.length;
    return this.#hold(slab, slab.buf.subarray(at, at + chunk.length));
  }

  /** A view this pool handed out passes as is, its reference moving with it; anything else is copied in. */
  adopt(chunk: Buffer): Buffer {
    return this.#held.has(chunk) ? chunk : this.copy(chunk);
  }

  /**
   * Socket reads straight into slabs, for a socket's `onread`: each reader fills slabs of its own,
   * since the socket owns the space it was given until its next read lands.
   */
  reader(): SlabReader {
    let slab: Slab | undefined;
    let used = 0;
    return {
      space: () => {
        if (slab === undefined || SLAB_BYTES - used < MIN_READ) {
          if (slab !== undefined) this.#unref(slab);
          slab = this.#take();
          used = 0;
        }
        return slab.buf.subarray(used);
      },
      landed: (n) => {
        if (slab === undefined || used + n > SLAB_BYTES) throw new RangeError('landed more than the space given');
        used += n;
        return slab.buf.subarray(used - n, used);
      },
      hold: (view) => {
        const of = this.#slabs.get(view.buffer);
        if (of === undefined || of.refs <= 0 || view.length === 0) throw new RangeError('not a view of a slab being read');
        return this.#hold(of, view);
      },
      close: () => {
        if (slab !== undefined) this.#unref(slab);
        slab = undefined;
      },
    };
  }

  /** One more holder of a view (of this pool or not: a foreign buffer is ignored). */
  retain(view: Buffer): void {
    const slab = this.#slabs.get(view.buffer);
    if (slab !== undefined && slab.refs > 0) this.#hold(slab, view);
  }

  /** A holder is done with `view`; ignores a buffer that is not a view of this pool. */
  release(view: Buffer): void {
    const slab = this.#slabs.get(view.buffer);
    if (slab !== undefined && this.#forget(view)) this.#unref(slab);
  }

  /**
   * `views` with neighbours that are contiguous in one slab joined into one view, their references
   * kept as one: fewer, larger writes, and followers that take them in larger pieces.
   */
  join(views: Buffer[]): Buffer[] {
    const out: Buffer[] = [];
    for (const view of views) {
      const last = out[out.length - 1];
      const slab = this.#slabs.get(view.buffer);
      const joinable = last !== undefined && slab !== undefined && last.buffer === view.buffer && last.byteOffset + last.length === view.byteOffset;
      if (!joinable || !this.#held.has(last) || !this.#held.has(view)) {
        out.push(view);
        continue;
      }
      // The joined view takes over `last`'s reference; `view`'s is given up.
      this.#forget(last);
      this.release(view);
      out[out.length - 1] = this.#hold(slab, slab.buf.subarray(last.byteOffset, view.byteOffset + view.length), false);
    }
    return out;
  }

  /** Free slabs waiting for reuse (what `drain` would give back). */
  get freeCount(): number {
    return this.#free.length;
  }

  /** An idle server gives its free slabs back to the allocator (the next download takes new ones). */
  drain(): void {
    this.#free.length = 0;
    const current = this.#current;
    if (current !== undefined && current.refs === 1) {
      this.#current = undefined;
      current.refs = 0;
    }
  }

  #take(): Slab {
    // Shared memory, so the hashing thread (storage/blobs/hash-thread.ts) reads the bytes where they landed.
    const buf = this.#free.pop() ?? Buffer.from(new SharedArrayBuffer(SLAB_BYTES));
    let slab = this.#slabs.get(buf.buffer);
    if (slab === undefined) {
      slab = { buf, refs: 0 };
      this.#slabs.set(buf.buffer, slab);
    }
    slab.refs = 1;
    return slab;
  }

  /** Counts a reference through `view` (and on its slab, unless it is one taken over). */
  #hold(slab: Slab, view: Buffer, count = true): Buffer {
    this.#held.set(view, (this.#held.get(view) ?? 0) + 1);
    if (count) slab.refs += 1;
    return view;
  }

  /** Drops one reference counted through `view`; false if it holds none. */
  #forget(view: Buffer): boolean {
    const n = this.#held.get(view);
    if (n === undefined) return false;
    if (n > 1) this.#held.set(view, n - 1);
    else this.#held.delete(view);
    return true;
  }

  #unref(slab: Slab): void {
    // Never below zero: a release too many must not hand a slab out twice.
    if (slab.refs <= 0) return;
    slab.refs -= 1;
    if (slab.refs === 0 && this.#free.length < KEEP_FREE) this.#free.push(slab.buf);
  }
}

/** One socket's reads into slabs (SlabPool.reader). */
export interface SlabReader {
  /** Where the next read may land: the rest of the current slab, or a fresh one. */
  space(): Buffer;
  /** `n` bytes landed at the start of the last `space()`: those bytes, held by nobody yet. */
  landed(n: number): Buffer;
  /** `view` (of landed bytes) with a reference of its own, for whoever it is handed to. */
  hold(view: Buffer): Buffer;
  /** No more reads: the current slab goes back once its views are released. */
  close(): void;
}

export const slabs = new SlabPool();
