import { createHash, type Hash } from 'node:crypto';
import { digestAlgorithm, digestHex, type Digest } from '../../oci/index.js';
import { DigestMismatchError, SizeMismatchError } from '../errors.js';
import { ThreadVerifier } from './hash-thread.js';

/**
 * Checks bytes against the digest (and size) they were asked for. `update` takes every chunk in
 * order; the caller may reuse a chunk's memory once update returns (a verifier that hashes later
 * holds a slab view or copies). `finish` settles once, after the last chunk, and rejects with
 * SizeMismatchError or DigestMismatchError.
 */
export interface Verifier {
  update(chunk: Buffer): void;
  /** Set while too many bytes wait for hashing: writers stop taking more until it resolves. */
  room(): Promise<void> | undefined;
  finish(): Promise<void>;
  /** The bytes will never be finished (an aborted write): whatever they hold is let go. */
  discard(): void;
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

  room(): undefined {
    return undefined;
  }

  discard(): void {}

  async finish(): Promise<void> {
    if (this.expectedSize !== undefined && this.#bytes !== this.expectedSize) throw new SizeMismatchError(this.expectedSize, this.#bytes);
    const actual = this.#hash.digest('hex');
    if (actual !== digestHex(this.digest)) throw new DigestMismatchError(this.digest, `${digestAlgorithm(this.digest)}:${actual}`);
  }
}

/**
 * Below this size a blob is hashed where it arrives even with the hashing thread on: the sha256 it
 * would save the main thread (under 0.2 ms) is not worth a wait for the thread on every small pull.
 */
const THREAD_MIN_BYTES = 256 * 1024;

/** Hashes on the calling thread: the default. */
export const createVerifier: CreateVerifier = (digest, expectedSize) => new InThreadVerifier(digest, expectedSize);

/** Hashes on the process's hashing thread (hash-thread.ts), whatever the size: for tests and benchmarks. */
export const threadVerifier: CreateVerifier = (digest, expectedSize) => new ThreadVerifier(digest, expectedSize);

/**
 * `storage.hashThread`: large and unknown sizes hashed on the hashing thread. Off by default: on
 * this project's 2-core machines the thread took the main thread 0.2-0.35 s of sha256 per 512 MiB
 * but cost 0.94-1.04× the wall time and 1.08-1.14× the CPU of a cold GET (BENCHMARKS.md), since no
 * core was idle; and a container's CPU limit is not what the process sees as its cores.
 */
export function verifierFor(hashThread: boolean): CreateVerifier {
  if (!hashThread) return createVerifier;
  return (digest, expectedSize) => (expectedSize === undefined || expectedSize >= THREAD_MIN_BYTES ? threadVerifier : createVerifier)(digest, expectedSize);
}
