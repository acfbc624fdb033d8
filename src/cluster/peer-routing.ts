import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import { readableOver, type BlobRouting, type BlobSource, type OpenedBlob, type RepoRef } from '../mirror/index.js';
import type { Membership } from './membership.js';
import { causeOf } from './membership.js';
import type { ClusterObserver } from './observer.js';
import { PeerRefused, type PeerClient } from './peer-client.js';

export interface PeerRoutingOptions {
  readonly membership: Membership;
  readonly client: Pick<PeerClient, 'blob' | 'blobHead'>;
  readonly observer: ClusterObserver;
  readonly log: (level: 'warn' | 'info', fields: Record<string, unknown>, message: string) => void;
  readonly now?: () => number;
}

/** How long a digest whose owner sent wrong bytes is fetched from the upstream instead. */
const DISTRUST_MS = 10 * 60_000;
/** Bounds the distrusted set whatever a broken peer does. */
const MAX_DISTRUSTED = 1000;

/**
 * A missing blob comes from the replica that owns its digest, if that is not this one. The bytes
 * are verified here like an upstream's (the ingest hashes them), and the upstream stands in
 * whenever the owner cannot: unreachable, an error answer, a body that broke off (resumed from
 * the upstream at the byte it broke), or bytes that failed the digest check (the next download of
 * that digest asks the upstream).
 */
export class PeerRouting implements BlobRouting {
  readonly #distrusted = new Map<Digest, number>();
  readonly #now: () => number;

  constructor(private readonly options: PeerRoutingOptions) {
    this.#now = options.now ?? Date.now;
  }

  route(ref: RepoRef, digest: Digest, upstream: BlobSource): { source: BlobSource; viaPeer: boolean } {
    const { membership } = this.options;
    const owner = membership.ownerOf(digest);
    const counted = this.#counted(upstream);
    if (owner === undefined || owner === membership.self || this.#isDistrusted(digest)) return { source: counted, viaPeer: false };
    return { source: { open: (r, d, offset = 0) => (offset > 0 ? counted.open(r, d, offset) : this.#fromPeer(owner, r, d, counted)) }, viaPeer: true };
  }

  /**
   * The owner's answer spares the upstream a HEAD when the owner holds the blob, as it does once
   * any replica pulled it. A 404 from the owner carries no reason (a HEAD has no body: its
   * upstream's 404, or configs that differ), so this replica's upstream is asked then, as on any failure.
   */
  async head(ref: RepoRef, digest: Digest, upstream: () => Promise<{ size: number }>): Promise<{ size: number }> {
    const { membership, client, observer, log } = this.options;
    const owner = membership.ownerOf(digest);
    if (owner === undefined || owner === membership.self || this.#isDistrusted(digest)) return upstream();
    try {
      return await client.blobHead(owner, ref, digest);
    } catch (err) {
      const refused = err instanceof PeerRefused;
      if (refused && err.status === 404) return upstream();
      if (!refused) membership.failed(owner, causeOf(err));
      observer.peerFallback(refused ? 'refused' : 'unreachable');
      log('warn', { peer: owner, digest, error: causeOf(err) }, "the owning peer could not say the blob's size: asking the upstream");
      return upstream();
    }
  }

  async #fromPeer(owner: string, ref: RepoRef, digest: Digest, upstream: BlobSource): Promise<OpenedBlob> {
    const { client, observer, membership, log } = this.options;
    let answer: { size: number | undefined; body: Readable };
    try {
      answer = await client.blob(owner, ref, digest);
    } catch (err) {
      const refused = err instanceof PeerRefused;
      // Connection trouble takes the peer out until its next ready probe; an error answer is about this blob only.
      if (!refused) membership.failed(owner, causeOf(err));
      observer.peerFetch('miss');
      observer.peerFallback(refused ? 'refused' : 'unreachable');
      log('warn', { peer: owner, digest, error: causeOf(err) }, 'the owning peer could not serve the blob: fetching it from the upstream');
      return upstream.open(ref, digest);
    }
    observer.peerFetch('hit');
    const resume = async (offset: number, err: unknown): Promise<Readable> => {
      observer.peerFallback('broke');
      log('warn', { peer: owner, digest, offset, error: causeOf(err) }, 'the owning peer broke off the blob: resuming it from the upstream');
      return (await upstream.open(ref, digest, offset)).body;
    };
    return {
      size: answer.size,
      body: readableOver(resumable(answer.body, answer.size, resume, (n) => observer.blobBytes('peer', n)), answer.body),
      rejected: () => {
        this.#distrust(digest);
        observer.peerFallback('mismatch');
        log('warn', { peer: owner, digest }, 'the owning peer sent bytes that fail the digest check: nothing was cached, and the upstream serves this digest for a while');
      },
    };
  }

  /** The upstream's bytes, counted as they pass. */
  #counted(upstream: BlobSource): BlobSource {
    const { observer } = this.options;
    return {
      async open(ref, digest, offset) {
        const opened = await upstream.open(ref, digest, offset);
        return { ...opened, body: readableOver(counting(opened.body, (n) => observer.blobBytes('upstream', n)), opened.body) };
      },
    };
  }

  #isDistrusted(digest: Digest): boolean {
    const until = this.#distrusted.get(digest);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#distrusted.delete(digest);
    return false;
  }

  #distrust(digest: Digest): void {
    if (this.#distrusted.size >= MAX_DISTRUSTED) this.#distrusted.delete(this.#distrusted.keys().next().value!);
    this.#distrusted.set(digest, this.#now() + DISTRUST_MS);
  }
}

async function* counting(body: Readable, count: (bytes: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    count(chunk.length);
    yield chunk;
  }
}

/**
 * The peer's bytes; if its body breaks off, the rest from `resume(offset)`. The client following
 * the download already has the first bytes, so only a continuation can still give it the whole
 * blob (the ingest's digest check covers both halves together).
 */
async function* resumable(first: Readable, size: number | undefined, resume: (offset: number, err: unknown) => Promise<Readable>, count: (bytes: number) => void): AsyncGenerator<Buffer> {
  let offset = 0;
  let broke: unknown;
  try {
    for await (const chunk of first as AsyncIterable<Buffer>) {
      offset += chunk.length;
      count(chunk.length);
      yield chunk;
    }
    return;
  } catch (err) {
    broke = err;
  }
  // Every byte arrived before the connection dropped: the digest check decides.
  if (size !== undefined && offset >= size) return;
  const rest = await resume(offset, broke);
  yield* rest as AsyncIterable<Buffer>;
}
