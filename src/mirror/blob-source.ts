import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { RepoRef, UpstreamLookup } from './types.js';

export interface OpenedBlob {
  /** Total blob size, when the source says it before the body (a Content-Length). */
  readonly size: number | undefined;
  readonly body: Readable;
}

/**
 * Where a missing blob's bytes come from: the repository's upstream today; a peer replica or an
 * imported layout are other sources of the same bytes. The bytes are untrusted until the ingest's
 * verifier saw them all. Rejects with the source's own typed errors (the HTTP layer maps them).
 */
export interface BlobSource {
  open(ref: RepoRef, digest: Digest): Promise<OpenedBlob>;
  /** What `open` last gave for `digest` failed verification (the source may then go elsewhere for it). */
  rejected?(ref: RepoRef, digest: Digest): void;
}

/** The upstream that routing chose for the repository. */
export function upstreamBlobSource(upstreams: UpstreamLookup): BlobSource {
  return {
    async open(ref, digest) {
      const res = await upstreams.get(ref.upstream).getBlob(ref.name, digest);
      return { size: res.contentLength, body: res.body };
    },
    rejected(ref, digest) {
      upstreams.get(ref.upstream).contentRejected?.(digest);
    },
  };
}
