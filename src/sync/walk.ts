import {
  isIndexMediaType,
  MANIFEST_MEDIA_TYPES,
  parseManifest,
  walkManifestGraph,
  type Descriptor,
  type Digest,
  type ManifestGraph,
  type ParsedManifest,
  type Reference,
} from '../oci/index.js';
import type { RepoRef, SyncMirror } from '../mirror/index.js';

export interface ImagePlan {
  readonly digest: Digest;
  /** Image manifests selected (the tag's own when it is not an index). */
  readonly manifests: number;
  /** Config and layer blobs of every selected image, each digest once. */
  readonly blobs: readonly Descriptor[];
  /** The top manifest and each selected image manifest: what signatures and SBOMs refer to. */
  readonly subjects: readonly Digest[];
}

/** Real trees are one level deep (Docker Hub) or two (attestations in nested indexes); deeper is a loop or abuse. */
const MAX_DEPTH = 4;

/** A manifest by reference, parsed: through the mirror's pull path for a run, read-only for a dry run. */
export type ManifestLoader = (reference: Reference) => Promise<{ digest: Digest; parsed: ParsedManifest }>;

/**
 * Fetches a tag's manifest through the mirror (so the index is cached intact); `fetch` wraps each
 * manifest request (retries, the rate-limit reserve).
 */
export function pullLoader(mirror: SyncMirror, ref: RepoRef, fetch: <T>(task: () => Promise<T>) => Promise<T>): ManifestLoader {
  return async (r) => {
    const reply = await fetch(() => mirror.manifest(ref, r, MANIFEST_MEDIA_TYPES, 'sync'));
    // manifest() (not manifestHead) always yields bytes.
    return { digest: reply.digest, parsed: parseManifest(reply.bytes ?? Buffer.alloc(0), reply.mediaType) };
  };
}

/** Loads the manifest and, for an index, the selected platforms' manifests; returns the blobs to make sure of. */
export async function planImage(get: ManifestLoader, reference: Reference, platforms: readonly string[]): Promise<ImagePlan> {
  const top = await get(reference);
  const blobs = new Map<string, Descriptor>();
  let manifests = 0;
  const graph: ManifestGraph = {
    load: async (digest) => (await get({ kind: 'digest', digest })).parsed,
    // Only an index's children are fetched, and of those only the selected platforms (and nested indexes).
    descend: (child, parent) => {
      if (parent.kind !== 'index') return false;
      const nested = child.platform === undefined && isIndexMediaType(child.mediaType);
      return nested || platformSelected(child, platforms);
    },
  };
  const subjects = new Set<Digest>([top.digest]);
  const onManifest = (digest: Digest, m: ParsedManifest) => {
    if (m.kind === 'index') return;
    subjects.add(digest);
    manifests++;
    for (const d of [...(m.config ? [m.config] : []), ...m.layers]) blobs.set(d.digest, d);
  };
  await walkManifestGraph({ digest: top.digest, mediaType: top.parsed.mediaType, parsed: top.parsed }, graph, { maxDepth: MAX_DEPTH, onManifest });
  return { digest: top.digest, manifests, blobs: [...blobs.values()], subjects: [...subjects] };
}

/** "linux/arm64" takes every arm64 variant; "linux/arm64/v8" only v8. No filter: everything. */
export function platformSelected(child: Descriptor, platforms: readonly string[]): boolean {
  if (platforms.length === 0) return true;
  const p = child.platform;
  if (p === undefined) return false;
  return platforms.some((want) => {
    const [os, arch, variant] = want.split('/');
    return p.os === os && p.architecture === arch && (variant === undefined || p.variant === variant);
  });
}
