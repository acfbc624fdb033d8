import { referenceString, type Digest, type Reference, type RepositoryName } from '../oci/index.js';
import { UpstreamError } from './errors.js';
import type { BlobResponse, ManifestHead, ManifestResponse, TagsPage, Upstream } from './types.js';

/**
 * An upstream on the far side of an air gap (`upstreams.<name>.offline`): nothing is ever sent, so
 * whatever the mirror does not hold is not found, at once. A pull then fails in milliseconds and
 * dockerd falls back to its next endpoint, where a connect timeout would hold every node's pull.
 */
export class OfflineUpstream implements Upstream {
  readonly offline = true;

  constructor(readonly name: string) {}

  getManifest(repo: RepositoryName, ref: Reference): Promise<ManifestResponse> {
    return this.notFound('MANIFEST_UNKNOWN', `manifest ${repo}:${referenceString(ref)}`);
  }

  headManifest(repo: RepositoryName, ref: Reference): Promise<ManifestHead> {
    return this.notFound('MANIFEST_UNKNOWN', `manifest ${repo}:${referenceString(ref)}`);
  }

  getBlob(repo: RepositoryName, digest: Digest): Promise<BlobResponse> {
    return this.notFound('BLOB_UNKNOWN', `blob ${repo}@${digest}`);
  }

  headBlob(repo: RepositoryName, digest: Digest): Promise<{ size: number }> {
    return this.notFound('BLOB_UNKNOWN', `blob ${repo}@${digest}`);
  }

  /** The mirror lists an offline upstream's tags from its own records; nothing to ask here. */
  listTags(repo: RepositoryName): Promise<TagsPage> {
    return this.notFound('NAME_UNKNOWN', `repository ${repo}`);
  }

  listReferrers(repo: RepositoryName, subject: Digest): Promise<TagsPage> {
    return this.notFound('NAME_UNKNOWN', `referrers of ${repo}@${subject}`);
  }

  listCatalog(): Promise<TagsPage> {
    return this.notFound('NAME_UNKNOWN', 'the catalog');
  }

  async close(): Promise<void> {}

  private async notFound(ociCode: string, what: string): Promise<never> {
    throw new UpstreamError(this.name, 'not-found', `${what} is not held here, and upstream ${this.name} is offline`, { ociCode });
  }
}
