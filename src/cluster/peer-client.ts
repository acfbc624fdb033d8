import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { MAX_MANIFEST_BYTES, type Digest } from '../oci/index.js';
import type { PeerManifest, RepoRef } from '../mirror/index.js';
import { FORWARDED_HEADER, peerAuthorization, peerBlobPath, peerManifestPath } from './peer-auth.js';

/** A peer that answered, but not with the blob (its status), as opposed to one that could not be reached. */
export class PeerRefused extends Error {
  override readonly name = 'PeerRefused';
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

export interface PeerClientOptions {
  readonly secret: string;
  /** This replica's URL, sent along so the owner's log says who asked. */
  readonly self: () => string | undefined;
  /** The readiness probe's whole budget. */
  readonly probeTimeoutMs: number;
  readonly now?: () => number;
  /** `cluster.ca`: PEM certificates trusted for peers over https, beside the built-in roots. */
  readonly ca?: string;
}

/**
 * HTTP to the other replicas, on keep-alive connections of its own. The owner answers with headers
 * once its upstream answered, so the header timeout is an upstream's; the body then streams as the
 * owner receives it.
 */
export class PeerClient {
  readonly #agent: Agent;
  readonly #now: () => number;

  constructor(private readonly options: PeerClientOptions) {
    this.#now = options.now ?? Date.now;
    // `ca` alone would replace the built-in roots: peers with publicly trusted certificates must still verify.
    const ca = options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca] };
    this.#agent = new Agent({ connect: { timeout: 2_000, ...ca }, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  }

  /** The owner's stream of the blob; rejects with PeerRefused for any answer but 200, or the connection's error. */
  async blob(owner: string, ref: RepoRef, digest: Digest): Promise<{ size: number | undefined; body: Readable }> {
    const res = await this.#send('GET', owner, peerBlobPath(ref.upstream, ref.name, digest));
    const length = Number(res.headers['content-length']);
    return { size: Number.isSafeInteger(length) ? length : undefined, body: res.body };
  }

  /** The blob's size as the owner knows it (its cache, a download in flight, or its upstream's HEAD); PeerRefused for any answer but 200 with a length. */
  async blobHead(owner: string, ref: RepoRef, digest: Digest): Promise<{ size: number }> {
    const res = await this.#send('HEAD', owner, peerBlobPath(ref.upstream, ref.name, digest));
    res.body.resume();
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) throw new PeerRefused(502);
    return { size };
  }

  /** The owner's copy of a manifest, unverified; PeerRefused for an answer but 200 or one larger than any manifest may be. */
  async manifest(owner: string, ref: RepoRef, digest: Digest): Promise<PeerManifest> {
    const res = await this.#send('GET', owner, peerManifestPath(ref.upstream, ref.name, digest));
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new PeerRefused(413);
      }
      chunks.push(chunk);
    }
    const type = res.headers['content-type'];
    return { bytes: Buffer.concat(chunks), mediaType: (typeof type === 'string' ? type : '').split(';', 1)[0]!.trim() };
  }

  /** A signed request for an internal path; rejects with PeerRefused for any answer but 200. */
  async #send(method: 'GET' | 'HEAD', owner: string, path: string): Promise<Dispatcher.ResponseData> {
    const res = await request(`${owner}${path}`, {
      method,
      dispatcher: this.#agent,
      headers: { authorization: peerAuthorization(this.options.secret, path, this.#now()), [FORWARDED_HEADER]: this.options.self() ?? 'unknown' },
    });
    if (res.statusCode !== 200) {
      res.body.resume();
      throw new PeerRefused(res.statusCode);
    }
    return res;
  }

  /** Resolves when the peer's /readyz answers 200 within the probe timeout. */
  async ready(url: string): Promise<void> {
    const res = await request(`${url}/readyz`, { dispatcher: this.#agent, signal: AbortSignal.timeout(this.options.probeTimeoutMs) });
    res.body.resume();
    if (res.statusCode !== 200) throw new PeerRefused(res.statusCode);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
