import type { Digest } from '../oci/index.js';

/** Base of every storage failure; carries no HTTP knowledge. */
export class StorageError extends Error {
  override readonly name: string = 'StorageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class DigestMismatchError extends StorageError {
  override readonly name = 'DigestMismatchError';
  constructor(
    readonly expected: Digest,
    readonly actual: string,
  ) {
    super(`content digest ${actual} does not match ${expected}`);
  }
}

export class SizeMismatchError extends StorageError {
  override readonly name = 'SizeMismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`content length ${actual} does not match expected ${expected}`);
  }
}

/** The metadata backend cannot be reached (Redis down): the request may succeed once it is back. */
export class MetadataUnavailableError extends StorageError {
  override readonly name = 'MetadataUnavailableError';
}
