import type { IncomingMessage, ServerResponse } from 'node:http';
import { FORWARDED_HEADER, parsePeerPath, PEER_BLOB_PREFIX, PEER_MANIFEST_PREFIX, verifyPeerAuthorization, type ClusterObserver } from '../cluster/index.js';
import type { BlobReply, ManifestReply, RepoRef } from '../mirror/index.js';
import { OciError, type Digest } from '../oci/index.js';
import type { RequestNote } from './handlers.js';
import { bodyStarted, sendBody } from './send-body.js';

export interface PeerEndpointOptions {
  /** `cluster.secret`: what every request must be signed with. */
  readonly secret: string;
  /** The mirror's blob path for a request a peer forwarded: from the cache, or one upstream download, never another peer. */
  readonly blobs: {
    forwardedBlob(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<BlobReply>;
    /** A blob's size: from the cache, a download in flight, or the upstream's HEAD, never another peer. */
    forwardedBlobHead(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number }>;
  };
  /** The same for a manifest by digest: from the store, or one coalesced upstream GET, never another peer. */
  readonly manifests: { forwardedManifest(ref: RepoRef, digest: Digest): Promise<ManifestReply> };
  readonly upstreams: ReadonlySet<string>;
  readonly observer: Pick<ClusterObserver, 'forwardedServed' | 'forwardedManifest'>;
  readonly now?: () => number;
}

/**
 * `GET /_regmirror/cluster/blobs/<upstream>/<repository>/<digest>` (and `.../manifests/...`): a
 * replica asks the owner of a digest for its bytes (HEAD: a blob's size). Answered before the registry routes, so neither the read policy nor the
 * policy gate applies, and nothing is answered (not even whether the path is well formed) before
 * the signature checked out: the asking replica already applied both to its own client.
 */
export class PeerEndpoint {
  readonly #now: () => number;

  constructor(private readonly options: PeerEndpointOptions) {
    this.#now = options.now ?? Date.now;
  }

  matches(url: string | undefined): boolean {
    return (url ?? '').startsWith(PEER_BLOB_PREFIX) || (url ?? '').startsWith(PEER_MANIFEST_PREFIX);
  }

  async serve(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, note: RequestNote): Promise<void> {
    const path = (req.url ?? '').split('?', 1)[0]!;
    if (!verifyPeerAuthorization(this.options.secret, path, req.headers.authorization, this.#now())) {
      throw new OciError('UNAUTHORIZED', 'this endpoint is for the replicas of a cluster (signed with cluster.secret)');
    }
    // The signature proves a replica sent it: the header only tells the log who did.
    if (req.headers[FORWARDED_HEADER] === undefined) throw new OciError('UNSUPPORTED', `internal requests carry ${FORWARDED_HEADER}`, { status: 400 });
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) throw new OciError('UNSUPPORTED', 'only GET, or HEAD of a blob', { status: 405 });
    const { kind, upstream, name, digest } = parsePeerPath(path);
    if (head && kind !== 'blob') throw new OciError('UNSUPPORTED', 'only GET, or HEAD of a blob', { status: 405 });
    if (!this.options.upstreams.has(upstream)) throw new OciError('NAME_UNKNOWN', `no upstream named ${upstream} here: the replicas' configs differ`);
    if (kind === 'manifest') return this.#manifest({ upstream, name }, digest, res, note);
    if (head) {
      const { size } = await this.options.blobs.forwardedBlobHead({ upstream, name }, digest, signal);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'docker-content-digest': digest });
      res.end();
      return;
    }
    try {
      const reply = await this.options.blobs.forwardedBlob({ upstream, name }, digest, signal);
      // No range was asked for, so the reply is the whole body.
      if (reply.kind !== 'body') throw new OciError('RANGE_INVALID', 'unexpected range answer');
      note.source = reply.source;
      const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'docker-content-digest': digest };
      if (reply.size !== undefined) headers['content-length'] = reply.size;
      await bodyStarted(reply.body, signal);
      res.writeHead(200, headers);
      await sendBody(reply.body, res, note);
      this.options.observer.forwardedServed('ok');
    } catch (err) {
      this.options.observer.forwardedServed('error');
      throw err;
    }
  }

  async #manifest(ref: RepoRef, digest: Digest, res: ServerResponse, note: RequestNote): Promise<void> {
    try {
      const reply = await this.options.manifests.forwardedManifest(ref, digest);
      // That digest's exact bytes, verified when stored; the asking replica verifies them again.
      note.source = reply.source;
      note.bytes = reply.size;
      res.writeHead(200, { 'content-type': reply.mediaType, 'content-length': reply.size, 'docker-content-digest': reply.digest });
      res.end(reply.bytes);
      this.options.observer.forwardedManifest('ok');
    } catch (err) {
      this.options.observer.forwardedManifest('error');
      throw err;
    }
  }
}
