import { LRUCache } from 'lru-cache';
import { childDescriptors, parseManifest, type Digest } from '../oci/index.js';
import type { RepoRef } from './types.js';

/** Where the references go: the blob cache (pins and recency follow them). */
export interface ReferenceSink {
  recordRepository(upstream: string, repository: string, digests: readonly Digest[]): void;
  touch(digest: Digest): void;
}

/** (repository, manifest) pairs remembered as already recorded: a hot pull parses nothing. */
const SEEN_PAIRS = 100_000;

/**
 * Records which repositories reference which digests, as manifests are served: the manifest itself,
 * its config and layers, or an index's child manifests (which, once pulled, record their own layers).
 * Recorded at serve time rather than derived from the tag store at start: it costs one parse per
 * (repository, manifest) pair per process, and it also catches a manifest that reached a second
 * repository by digest. A manifest served from memory also counts as a read of its file, so a hot
 * manifest is never the least recently used.
 */
export class ManifestReferences {
  readonly #seen = new LRUCache<string, true>({ max: SEEN_PAIRS });

  constructor(private readonly sink: ReferenceSink) {}

  served(ref: RepoRef, digest: Digest, mediaType: string, bytes: Buffer | undefined): void {
    this.sink.touch(digest);
    const key = `${ref.upstream}\u0000${ref.name}\u0000${digest}`;
    if (bytes === undefined || this.#seen.has(key)) return;
    let children: Digest[];
    try {
      children = childDescriptors(parseManifest(bytes, mediaType)).map((d) => d.digest);
    } catch {
      // Stored manifests were parsed when fetched; an unreadable one references nothing we can follow.
      children = [];
    }
    this.sink.recordRepository(ref.upstream, ref.name, [digest, ...children]);
    this.#seen.set(key, true);
  }
}
