import type { Readable } from 'node:stream';

/**
 * Export and import beside a running serve: the CLI reads and writes the files (its own filesystem,
 * its own progress), the server does what only the storage's holder may (pull through its cache,
 * commit and link). HTTP on the storage's admin socket, whose file permissions are the authorisation.
 *
 *   POST /v1/transfer/missing   {digests}                         → {missing}
 *   PUT  /v1/transfer/blobs/<digest>  (body: the bytes, content-length: size) → {}
 *   POST /v1/transfer/commit    CommitRequest                     → {}
 *   POST /v1/transfer/manifest  {upstream, repository, reference} → {digest, mediaType, bytes (base64)}
 *   GET  /v1/transfer/blob?upstream=&repository=&digest=          → the bytes
 *   POST /v1/transfer/tags      {upstream, repository}            → {names}
 *   POST /v1/transfer/catalog   {upstream}                        → {names}
 *
 * Failures answer {error, kind}: `input` (bad input: the CLI exits 2) or `failed` (exit 1).
 */
export const TRANSFER_PREFIX = '/v1/transfer/';

export type FailureKind = 'input' | 'failed';

export interface TransferFailure {
  readonly error: string;
  readonly kind: FailureKind;
}

export interface AdminResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
}

/** One request to the server holding the storage (the CLI's side of the admin socket). */
export type AdminTransport = (method: 'GET' | 'POST' | 'PUT', path: string, body?: Buffer | Readable, headers?: Record<string, string>) => Promise<AdminResponse>;
