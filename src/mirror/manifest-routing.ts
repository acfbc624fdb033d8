import type { Digest } from '../oci/index.js';
import type { RepoRef } from './types.js';

/** A manifest's exact bytes and media type as the replica that owns its digest held or fetched them. */
export interface PeerManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
}

/**
 * Where a manifest missing here by digest comes from when replicas share the work (src/cluster):
 * the replica that owns the digest, so the cluster sends the upstream one GET per manifest however
 * many replicas pull it (registries count manifest GETs against pull limits). The bytes are
 * verified again where they are stored, like an upstream's.
 */
export interface ManifestRouting {
  /** Other replicas take part now: a cold tag is resolved by HEAD and its manifest fetched by digest from the owner. */
  clustered(): boolean;
  /**
   * The owner's answer when another replica owns the digest, else undefined (this replica fetches
   * from the upstream itself). Resolves to undefined when the owner could not answer right: the
   * upstream stands in (correctness over savings).
   */
  routeManifest(ref: RepoRef, digest: Digest): (() => Promise<PeerManifest | undefined>) | undefined;
}
