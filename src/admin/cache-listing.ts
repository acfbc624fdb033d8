import { formatTime } from '../config/index.js';
import { walkManifestGraph, type Descriptor, type Digest } from '../oci/index.js';
import type { BlobStore, MetadataWalker, TagEntry } from '../storage/index.js';
import type { LsRequest, LsResult, LsTag } from './protocol.js';
import { StoredManifestGraph } from './stored-manifest-graph.js';

export interface ListingDeps {
  readonly store: BlobStore;
  readonly metadata: MetadataWalker;
  readonly isPinned: (upstream: string, repository: string) => boolean;
  readonly pinSources: readonly string[];
  readonly matches: (e: Pick<TagEntry, 'upstream' | 'repository'>) => boolean;
}

/** `cache ls`: every tag (or those of matching repositories) with what of its image is on this disk. */
export async function listCache(deps: ListingDeps, request: LsRequest): Promise<LsResult> {
  const { store, metadata } = deps;
  const graph = new StoredManifestGraph(store);
  const sizes = new Map<Digest, number>();
  for await (const blob of store.list()) sizes.set(blob.digest, blob.size);
  const tags: LsTag[] = [];
  for await (const entry of metadata.tags()) {
    if (!deps.matches(entry)) continue;
    const listed = await describe(graph, sizes, entry, deps.isPinned(entry.upstream, entry.repository));
    if (!request.incomplete || !listed.complete) tags.push(listed);
  }
  tags.sort((a, b) => `${a.upstream}/${a.repository}:${a.tag}`.localeCompare(`${b.upstream}/${b.repository}:${b.tag}`));
  return { tags, blobs: sizes.size, bytes: [...sizes.values()].reduce((a, b) => a + b, 0), pinSources: deps.pinSources };
}

async function describe(graph: StoredManifestGraph, sizes: ReadonlyMap<Digest, number>, entry: TagEntry, pinned: boolean): Promise<LsTag> {
  const { record } = entry;
  const reached = new Set<Digest>();
  const layers = new Set<Digest>();
  const configs = new Set<Digest>();
  const images = new Set<Digest>();
  const children: Descriptor[] = [];
  // Only manifests on this disk are read: an index's platforms never fetched count neither way.
  await walkManifestGraph({ digest: record.digest, mediaType: record.mediaType }, graph, {
    reached,
    onManifest: (digest, m) => {
      if (m.kind === 'index') children.push(...m.manifests);
      if (m.kind !== 'image') return;
      images.add(digest);
      if (m.config !== undefined) configs.add(m.config.digest);
      for (const l of m.layers) layers.add(l.digest);
    },
  });
  const present = [...reached].filter((d) => sizes.has(d));
  const cachedLayers = [...layers].filter((d) => sizes.has(d)).length;
  const missingConfigs = [...configs].filter((d) => !sizes.has(d)).length;
  const platforms = children
    .filter((c) => images.has(c.digest) && c.platform !== undefined && c.platform.os !== 'unknown')
    .map((c) => [c.platform?.os, c.platform?.architecture, c.platform?.variant].filter((p) => p !== undefined).join('/'));
  return {
    upstream: entry.upstream,
    repository: entry.repository,
    tag: entry.tag,
    digest: record.digest,
    mediaType: record.mediaType,
    cachedBlobs: present.length,
    cachedBytes: present.reduce((sum, d) => sum + (sizes.get(d) ?? 0), 0),
    layers: { cached: cachedLayers, total: layers.size },
    missingConfigs,
    platforms: [...new Set(platforms)].sort(),
    complete: images.size > 0 && cachedLayers === layers.size && missingConfigs === 0,
    pinned,
    lastPulled: record.pulledAt === undefined ? null : formatTime(record.pulledAt),
    lastSynced: record.syncedAt === undefined ? null : formatTime(record.syncedAt),
  };
}
