import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { digestAlgorithm, type Digest } from '../oci/index.js';

/** Writes in flight before the oldest must be done: reading goes on while the disk catches up. */
const WINDOW = 4;

export class BlobMismatchError extends Error {
  override readonly name = 'BlobMismatchError';
}

/**
 * Copies `body` through `write` (positional: chunks may complete out of order) while hashing it;
 * rejects with BlobMismatchError when the bytes are more or fewer than `size` or do not hash to
 * `digest`. `tap` sees every chunk (the exporter keeps a small config to read its platform).
 */
export async function copyVerified(
  body: Readable,
  digest: Digest,
  size: number,
  write: (chunk: Buffer, position: number) => Promise<void>,
  tap?: (chunk: Buffer) => void,
): Promise<void> {
  const hash = createHash(digestAlgorithm(digest));
  const pending: Promise<void>[] = [];
  let at = 0;
  try {
    for await (const data of body) {
      const chunk = data as Buffer;
      if (at + chunk.length > size) throw new BlobMismatchError(`${digest} has more than the ${size} bytes its descriptor says`);
      hash.update(chunk);
      tap?.(chunk);
      const written = write(chunk, at);
      written.catch(() => {});
      pending.push(written);
      at += chunk.length;
      if (pending.length >= WINDOW) await pending.shift();
    }
    for (const written of pending.splice(0)) await written;
  } catch (err) {
    body.destroy();
    await Promise.allSettled(pending);
    throw err;
  }
  if (at !== size) throw new BlobMismatchError(`${digest} has ${at} bytes, its descriptor says ${size}`);
  const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
  if (actual !== digest) throw new BlobMismatchError(`the bytes named ${digest} hash to ${actual}`);
}
