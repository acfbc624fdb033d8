import { MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES, parseManifest, walkManifestGraph, type Digest, type ManifestGraph, type ParsedManifest } from '../oci/index.js';
import type { BlobStore } from '../storage/index.js';

/**
 * The manifest graph as far as this store holds it: index → child manifests, image → config and
 * layers. A manifest whose bytes are not here reaches nothing beyond itself (on a Redis replica
 * that never fetched it, its layers are not here either, or they belong to another tag).
 */
export class StoredManifestGraph implements ManifestGraph {
  /** Many tags share child manifests (every tag of a multi-arch image): each file is read once per graph. */
  private readonly seen = new Map<Digest, ParsedManifest | undefined>();

  constructor(private readonly store: BlobStore) {}

  /** Every digest reachable from `root` (itself included), added to `into`. */
  async walk(root: Digest, mediaType: string, into: Set<Digest>): Promise<void> {
    await walkManifestGraph({ digest: root, mediaType }, this, { reached: into });
  }

  /** Only manifests are read: a layer or config reaches nothing, and layers are big. */
  descend(child: { readonly mediaType: string }): boolean {
    return MANIFEST_MEDIA_TYPES.includes(child.mediaType);
  }

  async load(digest: Digest, mediaType: string): Promise<ParsedManifest | undefined> {
    if (this.seen.has(digest)) return this.seen.get(digest);
    const parsed = await this.read(digest, mediaType);
    this.seen.set(digest, parsed);
    return parsed;
  }

  private async read(digest: Digest, mediaType: string): Promise<ParsedManifest | undefined> {
    const info = await this.store.stat(digest);
    // Manifests are small; anything bigger is not read as one (it is a layer, or junk).
    if (info === undefined || info.size > MAX_MANIFEST_BYTES) return undefined;
    const stream = await this.store.open(digest);
    if (stream === undefined) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    try {
      return parseManifest(Buffer.concat(chunks), mediaType);
    } catch {
      return undefined; // not a manifest (a config blob reached as a root would be odd, but is harmless)
    }
  }
}
