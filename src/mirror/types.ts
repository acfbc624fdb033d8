import type { RepositoryName } from '../oci/index.js';
import type { Logger } from 'pino';
import type { BlobStore, ContentLinks, TagStore } from '../storage/index.js';
import type { Upstream } from '../upstream/index.js';
import type { MirrorObserver } from './observer.js';

/** Which registry and repository a request is about, after routing. */
export interface RepoRef {
  readonly upstream: string;
  readonly name: RepositoryName;
}

export interface UpstreamLookup {
  /** The configured upstream; routing guarantees the name exists. */
  get(name: string): Upstream;
}

/** The metadata roles the cache policy uses: tags, and what content is held where. */
export type MirrorMetadata = TagStore & ContentLinks;

/** What every cache-policy service is built from. */
export interface ServiceDeps {
  readonly upstreams: UpstreamLookup;
  readonly store: BlobStore;
  readonly metadata: MirrorMetadata;
  readonly observer: MirrorObserver;
  readonly logger: Logger;
}
