import type { ServerResponse } from 'node:http';
import { finished, type Readable } from 'node:stream';

/**
 * A body whose chunks may be handed back once the socket has written them, so their memory is
 * reused for the next read. Declared here, by the one consumer; a stream offers it just by having
 * the method (the blob file readers do).
 */
interface ChunkRecycler {
  /** `chunk` came from this stream and nothing references it any more. */
  recycle(chunk: Buffer): void;
  /** The client is slow (its socket stayed full a while): read small chunks, growing again as it keeps up. */
  slowDown?(): void;
}

function chunkRecycler(stream: Readable): ChunkRecycler | undefined {
  const candidate = stream as Readable & Partial<ChunkRecycler>;
  return typeof candidate.recycle === 'function' ? (candidate as ChunkRecycler) : undefined;
}

/** A socket that took longer than this to drain belongs to a slow client (see ChunkRecycler.slowDown). */
const SLOW_DRAIN_MS = 50;

/**
 * Writes `body` to `res` with backpressure and resolves once the response finished; rejects (and
 * destroys `body`) if either side fails or the client leaves. `tally.bytes` is set to the bytes
 * written either way. Instead of
 * stream.pipeline because it hands every chunk back to a recycling body once the socket wrote it
 * (the write callback), so a warm blob reuses a few read buffers instead of allocating one per MiB.
 * Bytes are counted here, not by a second 'data' listener.
 */
export function sendBody(body: Readable, res: ServerResponse, tally: { bytes?: number }): Promise<void> {
  const recycler = chunkRecycler(body);
  return new Promise<void>((resolve, reject) => {
    let sent = 0;
    let settled = false;
    let pausedAt = 0;
    const onData = (chunk: Buffer): void => {
      sent += chunk.length;
      // Only a successful write gives the chunk back: after an error the socket may still hold it.
      const ok = recycler === undefined ? res.write(chunk) : res.write(chunk, (error) => error || recycler.recycle(chunk));
      if (!ok) {
        pausedAt = performance.now();
        body.pause();
      }
    };
    const onDrain = (): void => {
      // Only a client that kept its socket full for a while gets small chunks: a fast one whose
      // socket queued for a moment keeps large reads (64 KiB reads tripled a warm GET's CPU).
      if (performance.now() - pausedAt > SLOW_DRAIN_MS) recycler?.slowDown?.();
      body.resume();
    };
    const settle = (error: Error | null | undefined): void => {
      if (settled) return;
      settled = true;
      tally.bytes = sent;
      body.off('data', onData);
      res.off('drain', onDrain);
      if (error) {
        body.destroy();
        reject(error);
      } else resolve();
    };
    body.on('data', onData);
    res.on('drain', onDrain);
    body.once('end', () => res.end());
    body.once('error', settle);
    finished(res, settle);
  });
}

/**
 * Resolves once `body` has bytes to read or has ended; rejects with its error if it fails first.
 * Headers wait for this: a body that fails before its first byte (the upstream dropped, the digest
 * of a tiny blob failed) then gets an error answer instead of a 200 cut to nothing, which clients
 * report as an empty reply. If the client leaves (`left` aborts) the body is destroyed.
 */
export function bodyStarted(body: Readable, left: AbortSignal): Promise<void> {
  if (body.errored) return Promise.reject(body.errored);
  if (body.destroyed) return Promise.reject(new Error('the body was closed before its first byte'));
  if (left.aborted) {
    body.destroy();
    return Promise.reject(new Error('the client left before the first byte'));
  }
  if (body.readableLength > 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: Error): void => {
      body.off('readable', onReadable);
      body.off('error', settle);
      body.off('close', onClose);
      left.removeEventListener('abort', onLeft);
      if (error) reject(error);
      else resolve();
    };
    const onReadable = (): void => settle();
    const onClose = (): void => settle(body.errored ?? new Error('the body was closed before its first byte'));
    const onLeft = (): void => {
      body.destroy();
      settle(new Error('the client left before the first byte'));
    };
    body.once('readable', onReadable);
    body.once('error', settle);
    body.once('close', onClose);
    left.addEventListener('abort', onLeft, { once: true });
  });
}
