import { MANIFEST_MEDIA_TYPES, parseManifest, type Digest } from '../oci/index.js';
import type { BlobStore } from '../storage/index.js';

/** Manifests are small; anything bigger is not read as one (it is a layer, or junk). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * What a manifest reaches, as far as this store holds it: index → child manifests, image → config
 * and layers. A manifest whose bytes are not here reaches nothing beyond itself (on a Redis replica
 * that never fetched it, its layers are not here either, or they belong to another tag).
 */
export class ReferenceWalker {
  /** Many tags share child manifests (every tag of a multi-arch image): each file is read once per walker. */
  private readonly seen = new Map<Digest, ReadonlyArray<{ digest: Digest; mediaType: string }>>();

  constructor(private readonly store: BlobStore) {}

  /** Every digest reachable from `root` (itself included), added to `into`. */
  async walk(root: Digest, mediaType: string, into: Set<Digest>): Promise<void> {
    const queue: Array<[Digest, string | undefined]> = [[root, mediaType]];
    while (queue.length > 0) {
      const [digest, type] = queue.pop() as [Digest, string | undefined];
      if (into.has(digest)) continue;
      into.add(digest);
      if (type === undefined) continue;
      for (const child of await this.childrenOf(digest, type)) {
        // Only manifests are read: a layer or config reaches nothing, and layers are big.
        queue.push([child.digest, MANIFEST_MEDIA_TYPES.includes(child.mediaType) ? child.mediaType : undefined]);
      }
    }
  }

  private async childrenOf(digest: Digest, mediaType: string): Promise<ReadonlyArray<{ digest: Digest; mediaType: string }>> {
    const known = this.seen.get(digest);
    if (known !== undefined) return known;
    const children = await this.read(digest, mediaType);
    this.seen.set(digest, children);
    return children;
  }

  private async read(digest: Digest, mediaType: string): Promise<ReadonlyArray<{ digest: Digest; mediaType: string }>> {
    const info = await this.store.stat(digest);
    if (info === undefined || info.size > MAX_MANIFEST_BYTES) return [];
    const stream = await this.store.open(digest);
    if (stream === undefined) return [];
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    try {
      const parsed = parseManifest(Buffer.concat(chunks), mediaType);
      return [...parsed.manifests, ...(parsed.config ? [parsed.config] : []), ...parsed.layers];
    } catch {
      return []; // not a manifest (a config blob reached as a root would be odd, but is harmless)
    }
  }
}
