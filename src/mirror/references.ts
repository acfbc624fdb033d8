import { LRUCache } from 'lru-cache';
import { childDescriptors, parseManifest, type Digest } from '../oci/index.js';
import type { ContentLinks } from '../storage/index.js';
import type { RepoRef } from './types.js';

/** Where the references go: the blob cache (pins and recency follow them). */
export interface ReferenceSink {
  recordRepository(upstream: string, repository: string, digests: readonly Digest[]): void;
  touch(digest: Digest): void;
}

export interface ManifestReferencesOptions {
  readonly sink: ReferenceSink;
  /** The shared record of which repositories hold which digests. */
  readonly links: Pick<ContentLinks, 'link'>;
  /**
   * A link write failed: the pull goes on and the next serve retries. With repository-scoped serving
   * a missing link costs an upstream HEAD to confirm the digest, never a wrong answer.
   */
  readonly onLinkFailed: (ref: RepoRef, digest: Digest, error: unknown) => void;
}

/** (repository, manifest) pairs remembered as already recorded: a hot pull parses nothing. */
const SEEN_PAIRS = 100_000;

/**
 * Records which repositories reference which digests, as manifests are served: the manifest itself,
 * its config and layers, or an index's child manifests (which, once pulled, record their own layers).
 * Recorded at serve time rather than derived from the tag store at start: it costs one parse per
 * (repository, manifest) pair per process, and it also catches a manifest that reached a second
 * repository by digest. Sync pulls through the same path, so synced images are linked too. A manifest
 * served from memory also counts as a read of its file, so a hot manifest is never the least recently used.
 */
export class ManifestReferences {
  readonly #seen = new LRUCache<string, true>({ max: SEEN_PAIRS });

  constructor(private readonly options: ManifestReferencesOptions) {}

  /** Resolves once the links are written, so a client that next asks for a blob finds them. */
  async served(ref: RepoRef, digest: Digest, mediaType: string, bytes: Buffer | undefined): Promise<void> {
    const { sink, links, onLinkFailed } = this.options;
    sink.touch(digest);
    const key = `${ref.upstream}\u0000${ref.name}\u0000${digest}`;
    if (bytes === undefined || this.#seen.has(key)) return;
    let children: Digest[];
    try {
      children = childDescriptors(parseManifest(bytes, mediaType)).map((d) => d.digest);
    } catch {
      // Stored manifests were parsed when fetched; an unreadable one references nothing we can follow.
      children = [];
    }
    const digests = [digest, ...children];
    sink.recordRepository(ref.upstream, ref.name, digests);
    try {
      await links.link(ref.upstream, ref.name, digests);
    } catch (error) {
      onLinkFailed(ref, digest, error);
      return;
    }
    this.#seen.set(key, true);
  }
}
