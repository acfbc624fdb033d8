import { computeDigest, digestAlgorithm, type Digest } from '../oci/index.js';
import type { ManifestRouting, PeerManifest, RepoRef } from '../mirror/index.js';
import { causeOf, type Membership } from './membership.js';
import type { ClusterObserver } from './observer.js';
import { PeerRefused, type PeerClient } from './peer-client.js';

export interface PeerManifestsOptions {
  readonly membership: Membership;
  readonly client: Pick<PeerClient, 'manifest'>;
  readonly observer: Pick<ClusterObserver, 'manifestFetch'>;
  readonly log: (level: 'warn' | 'info', fields: Record<string, unknown>, message: string) => void;
}

/**
 * A manifest missing here by digest comes from the replica that owns the digest (the same
 * rendezvous hashing as blobs), which answers from its store or its one coalesced upstream GET.
 * A manifest is small and whole before anything is stored, so the digest is checked here: an owner
 * that is unreachable, answers an error or answers wrong bytes costs one upstream GET, never a
 * wrong cache entry.
 */
export class PeerManifests implements ManifestRouting {
  constructor(private readonly options: PeerManifestsOptions) {}

  clustered(): boolean {
    return this.options.membership.members().length > 1;
  }

  routeManifest(ref: RepoRef, digest: Digest): (() => Promise<PeerManifest | undefined>) | undefined {
    const { membership } = this.options;
    const owner = membership.ownerOf(digest);
    if (owner === undefined || owner === membership.self) return undefined;
    return () => this.#fromPeer(owner, ref, digest);
  }

  async #fromPeer(owner: string, ref: RepoRef, digest: Digest): Promise<PeerManifest | undefined> {
    const { client, observer, membership, log } = this.options;
    let answer: PeerManifest;
    try {
      answer = await client.manifest(owner, ref, digest);
    } catch (err) {
      const refused = err instanceof PeerRefused;
      // Connection trouble takes the peer out until its next ready probe; an error answer is about this manifest only.
      if (!refused) membership.failed(owner, causeOf(err));
      observer.manifestFetch(refused ? 'refused' : 'unreachable');
      log('warn', { peer: owner, digest, error: causeOf(err) }, 'the owning peer could not serve the manifest: fetching it from the upstream');
      return undefined;
    }
    if (computeDigest(answer.bytes, digestAlgorithm(digest)) !== digest) {
      observer.manifestFetch('mismatch');
      log('warn', { peer: owner, digest }, 'the owning peer sent a manifest that fails the digest check: nothing was cached, fetching it from the upstream');
      return undefined;
    }
    observer.manifestFetch('hit');
    return answer;
  }
}
