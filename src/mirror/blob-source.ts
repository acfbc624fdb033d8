import { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { RepoRef, UpstreamLookup } from './types.js';

export interface OpenedBlob {
  /** Total blob size, when the source says it before the body (a Content-Length). */
  readonly size: number | undefined;
  readonly body: Readable;
  /** Told when the bytes this source gave failed verification (a peer that answered wrong bytes). */
  readonly rejected?: (error: unknown) => void;
}

/**
 * Where a missing blob's bytes come from: the repository's upstream today; a peer replica or an
 * imported layout are other sources of the same bytes. The bytes are untrusted until the ingest's
 * verifier saw them all. Rejects with the source's own typed errors (the HTTP layer maps them).
 * `offset`: the body starts that many bytes in (a download resumed after another source broke off).
 */
export interface BlobSource {
  open(ref: RepoRef, digest: Digest, offset?: number): Promise<OpenedBlob>;
  /** What `open` last gave for `digest` failed verification (the source may then go elsewhere for it). */
  rejected?(ref: RepoRef, digest: Digest): void;
}

/**
 * Which source a download reads from, when replicas share the work (src/cluster): the replica that
 * owns the digest, with `upstream` as its fallback, or `upstream` itself when this replica owns it.
 */
export interface BlobRouting {
  route(ref: RepoRef, digest: Digest, upstream: BlobSource): { readonly source: BlobSource; readonly viaPeer: boolean };
  /** A missing blob's size: the owner is asked (it likely holds the blob), `upstream` when it cannot say. */
  head?(ref: RepoRef, digest: Digest, upstream: () => Promise<{ size: number }>): Promise<{ size: number }>;
}

/** The upstream that routing chose for the repository. */
export function upstreamBlobSource(upstreams: UpstreamLookup): BlobSource {
  return {
    async open(ref, digest, offset = 0) {
      const res = await upstreams.get(ref.upstream).getBlob(ref.name, digest, offset > 0 ? { range: { start: offset } } : undefined);
      if (offset === 0) return { size: res.contentLength, body: res.body };
      // A registry may ignore the Range and send it all: skip what the caller already has.
      const body = res.status === 206 ? res.body : skipBytes(res.body, offset);
      return { size: res.contentLength === undefined ? undefined : res.status === 206 ? res.contentLength + offset : res.contentLength, body };
    },
    rejected(ref, digest) {
      upstreams.get(ref.upstream).contentRejected?.(digest);
    },
  };
}

function skipBytes(body: Readable, count: number): Readable {
  let left = count;
  const rest = (async function* () {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (left >= chunk.length) {
        left -= chunk.length;
        continue;
      }
      yield left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
    }
  })();
  return readableOver(rest, body);
}

/** A stream over `chunks` that destroys `inner` when it is destroyed early. */
export function readableOver(chunks: AsyncIterable<Buffer>, inner: Readable): Readable {
  const out = Readable.from(chunks, { objectMode: false });
  out.once('close', () => inner.destroy());
  return out;
}
