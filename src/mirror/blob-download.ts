import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import { errorCode } from '../observability/index.js';
import { DigestMismatchError, StorageError, type BlobInfo, type BlobWriter } from '../storage/index.js';
import { UpstreamError } from '../upstream/index.js';
import type { BlobSource } from './blob-source.js';
import type { BlobTarget, Ingest } from './ingest.js';
import type { RepoRef } from './types.js';

export interface StartedDownload extends BlobTarget {
  /** Total blob size when the source said it up front (a Content-Length). */
  readonly size: number | undefined;
}

export type DownloadResult = { info: BlobInfo } | { error: unknown; bytes: number };

/**
 * One fetch of a blob from its source, written to a temp file while any number of clients follow
 * it (or, when the store keeps nothing now, streamed to the clients that followed from the start).
 * It belongs to no client: a client that goes away destroys only its own follower, and the
 * download goes on to fill the cache (the reference proxy aborts the fill instead).
 */
export class BlobDownload {
  /** Resolves once the source answered and the writer is open; rejects with the source's error. */
  readonly ready: Promise<StartedDownload>;
  /**
   * Resolves after the digest was verified, the blob committed and, if kept, linked to `ref.upstream`.
   * Rejects when the store stopped keeping it mid-download, though every client got the whole blob.
   */
  readonly done: Promise<BlobInfo>;
  /** ms since epoch, for the in-flight table's rate. */
  readonly startedAt: number;
  /** Client responses reading it now: BlobService counts them in and out. */
  followers = 0;
  /** Reads from a peer replica (src/cluster), not from the upstream. */
  viaPeer = false;
  #started: StartedDownload | undefined;

  constructor(
    source: BlobSource,
    /** The repository it was started for: the one upstream authorised it for, and the one it gets linked to. */
    readonly ref: RepoRef,
    readonly digest: Digest,
    ingest: Ingest,
    onFinished: (result: DownloadResult) => void,
    now: () => number = Date.now,
  ) {
    this.startedAt = now();
    const started = (async () => {
      const { size, body, rejected } = await source.open(ref, digest);
      try {
        return { ...(await ingest.begin(digest, size)), size, body, rejected };
      } catch (err) {
        body.destroy();
        throw err;
      }
    })();
    this.ready = started.then(({ writer, kept, size }) => (this.#started = { writer, kept, size }));
    this.done = started.then(async ({ writer, kept, body, rejected }) => {
      let reported = false;
      const failed = (error: unknown): void => {
        if (reported) return;
        reported = true;
        if (error instanceof DigestMismatchError) rejected?.(error);
        onFinished({ error, bytes: writer.bytesWritten });
      };
      let info: BlobInfo;
      try {
        // A pass-through writer's promise is its followers' backpressure: wait for every chunk there.
        info = await pump(body, writer, kept ? WRITE_WINDOW : 1, (err) => sourceBroke(ref, err), failed);
        if (kept && writer.stoppedCaching === undefined) await ingest.link(ref, digest, info.size);
      } catch (error) {
        failed(error);
        throw error;
      }
      onFinished({ info });
      const stopped = writer.stoppedCaching;
      if (kept && stopped !== undefined) throw new StorageError(`blob ${digest} was streamed to its clients but not cached: ${stopped.message}`, { cause: stopped });
      return info;
    });
    // Nobody may be waiting on `done` (all clients left); the failure was already reported.
    this.done.catch(() => {});
  }

  /** Bytes received so far and the size upstream announced (both unknown until it answered). */
  get progress(): { bytes: number; size: number | undefined } {
    return { bytes: this.#started?.writer.bytesWritten ?? 0, size: this.#started?.size };
  }
}

/**
 * Bytes handed to a caching writer before the oldest must be on disk (64 chunks of undici's 64 KiB
 * when it was counted in chunks; a direct GET's chunks are up to a slab). 4 MiB: writes into new
 * page-cache pages cost 0.17-1.4 CPU s per 512 MiB here from one run to the next
 * (bench/cold-floor.mjs), and a deeper window lets reading run on through a slow stretch.
 * 4 MiB against 1 MiB, alternating, 4 cold GETs each: 1.37-1.57 s against 1.54-1.75 s.
 */
const WRITE_WINDOW = 4 * 1024 * 1024;

/**
 * Writes a body into a blob writer, up to `window` bytes ahead of the disk (1: each chunk waits),
 * and commits (which verifies); on failure the body is destroyed and the writer aborted. Imports
 * copy blobs with it too. `failed` hears of a failure before the abort is awaited: the followers
 * were cut in this same turn, and what the caller does about it (an endpoint passed over) must be
 * done before any of their clients can come back.
 */
export async function pump(
  body: Readable,
  writer: BlobWriter,
  window: number,
  broke: (err: unknown) => Error = (err) => (err instanceof Error ? err : new Error(String(err))),
  failed: (err: unknown) => void = () => {},
): Promise<BlobInfo> {
  const pending: { written: Promise<void>; bytes: number }[] = [];
  let ahead = 0;
  try {
    // The upstream is read at the disk's pace, never at a client's: followers read the file.
    // Reading goes on while earlier chunks are written, so the writer can batch them.
    for await (const chunk of chunksOf(body, broke)) {
      const bytes = (chunk as Buffer).length;
      const written = writer.write(chunk as Buffer);
      // Awaited below, in order; until then a failure must not count as unhandled.
      written.catch(() => {});
      pending.push({ written, bytes });
      ahead += bytes;
      while (ahead >= window && pending.length > 0) {
        const oldest = pending.shift()!;
        ahead -= oldest.bytes;
        await oldest.written;
      }
    }
    for (const { written } of pending.splice(0)) await written;
    return await writer.commit();
  } catch (err) {
    body.destroy();
    // Bytes that arrived before the upstream failed still reach the followers, as when each
    // chunk was written before the next was read: a client gets its short body, not a reset.
    await Promise.allSettled(pending.map((p) => p.written));
    failed(err);
    await writer.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

/** The body's chunks; a read that fails (the connection dropped, the body timed out) fails as `broke(err)`. */
async function* chunksOf(body: Readable, broke: (err: unknown) => Error): AsyncGenerator<unknown> {
  try {
    yield* body;
  } catch (err) {
    throw broke(err);
  }
}

/** A body that broke off is the upstream's failure, not an internal one: a typed error the HTTP layer maps. */
function sourceBroke(ref: RepoRef, err: unknown): Error {
  if (err instanceof UpstreamError || err instanceof StorageError) return err;
  const code = errorCode(err);
  return new UpstreamError(ref.upstream, 'unavailable', `the blob body from ${ref.upstream} broke off${code ? ` (${code})` : ''}`, {
    reason: `broke off the blob body${code ? ` (${code})` : ''}`,
  });
}
