import type { Readable } from 'node:stream';
import type { Digest, RepositoryName } from '../oci/index.js';
import type { BlobInfo, BlobStore, BlobWriter } from '../storage/index.js';
import type { Upstream } from '../upstream/index.js';

export interface StartedDownload {
  readonly writer: BlobWriter;
  /** Total blob size when upstream sent a Content-Length. */
  readonly size: number | undefined;
}

/**
 * One upstream GET of a blob, written to a temp file while any number of clients follow it.
 * It belongs to no client: a client that goes away destroys only its own follower, and the
 * download goes on to fill the cache (the reference proxy aborts the fill instead).
 */
export class BlobDownload {
  /** Resolves once upstream answered and the temp file is open; rejects with the upstream's error. */
  readonly ready: Promise<StartedDownload>;
  /** Resolves after the digest was verified and the blob committed. */
  readonly done: Promise<BlobInfo>;

  constructor(
    upstream: Upstream,
    repository: RepositoryName,
    digest: Digest,
    store: BlobStore,
    onFinished: (result: { info: BlobInfo } | { error: unknown; bytes: number }) => Promise<void>,
  ) {
    const started = (async () => {
      const res = await upstream.getBlob(repository, digest);
      try {
        const writer = await store.begin(digest, res.contentLength);
        return { writer, size: res.contentLength, body: res.body };
      } catch (err) {
        res.body.destroy();
        throw err;
      }
    })();
    this.ready = started.then(({ writer, size }) => ({ writer, size }));
    this.done = started.then(async ({ writer, body }) => {
      try {
        const info = await pump(body, writer);
        await onFinished({ info });
        return info;
      } catch (error) {
        await onFinished({ error, bytes: writer.bytesWritten });
        throw error;
      }
    });
    // Nobody may be waiting on `done` (all clients left); the failure was already reported.
    this.done.catch(() => {});
  }
}

/**
 * Chunks (64 KiB each from undici) handed to a caching writer before the oldest must be on disk.
 * 4 MiB: writes into new page-cache pages cost 0.17-1.4 CPU s per 512 MiB here from one run to the
 * next (bench/cold-floor.mjs), and a deeper window lets reading run on through a slow stretch.
 * 64 against 16, alternating, 4 cold GETs each: 1.37-1.57 s against 1.54-1.75 s.
 */
const WRITE_WINDOW = 64;

async function pump(body: Readable, writer: BlobWriter): Promise<BlobInfo> {
  // An uncached writer's promise is its followers' backpressure: wait for every chunk there.
  const window = writer.caching === false ? 1 : WRITE_WINDOW;
  const pending: Promise<void>[] = [];
  try {
    // The upstream is read at the disk's pace, never at a client's: followers read the file.
    // Reading goes on while earlier chunks are written, so the writer can batch them.
    for await (const chunk of body) {
      const written = writer.write(chunk as Buffer);
      // Awaited below, in order; until then a failure must not count as unhandled.
      written.catch(() => {});
      pending.push(written);
      if (pending.length >= window) await pending.shift();
    }
    for (const written of pending.splice(0)) await written;
    return await writer.commit();
  } catch (err) {
    body.destroy();
    // Bytes that arrived before the upstream failed still reach the followers, as when each
    // chunk was written before the next was read: a client gets its short body, not a reset.
    await Promise.allSettled(pending);
    await writer.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
