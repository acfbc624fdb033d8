import { createHash, type Hash } from 'node:crypto';
import { digestAlgorithm, digestHex, type Digest } from '../../oci/index.js';
import { DigestMismatchError, SizeMismatchError } from '../errors.js';

/**
 * Checks bytes against the digest (and size) they were asked for. `update` takes every chunk in
 * order and must not keep a copy (writers hand it the chunks their followers still read);
 * `finish` settles once, after the last chunk, and rejects with SizeMismatchError or
 * DigestMismatchError. A promise, so hashing can move off the main thread without changing callers.
 */
export interface Verifier {
  update(chunk: Buffer): void;
  finish(): Promise<void>;
}

/** `expectedSize` undefined: any length is accepted, only the digest is checked. */
export type CreateVerifier = (digest: Digest, expectedSize: number | undefined) => Verifier;

/** Hashes on the calling thread: one `Hash.update` per chunk, no copies. */
class InThreadVerifier implements Verifier {
  readonly #hash: Hash;
  #bytes = 0;

  constructor(
    readonly digest: Digest,
    readonly expectedSize: number | undefined,
  ) {
    this.#hash = createHash(digestAlgorithm(digest));
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
  }

  async finish(): Promise<void> {
    if (this.expectedSize !== undefined && this.#bytes !== this.expectedSize) throw new SizeMismatchError(this.expectedSize, this.#bytes);
    const actual = this.#hash.digest('hex');
    if (actual !== digestHex(this.digest)) throw new DigestMismatchError(this.digest, `${digestAlgorithm(this.digest)}:${actual}`);
  }
}

export const createVerifier: CreateVerifier = (digest, expectedSize) => new InThreadVerifier(digest, expectedSize);
