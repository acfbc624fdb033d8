import type { Digest, Platform } from '../oci/index.js';
import type { BlobStore, MetadataWalker } from '../storage/index.js';
import { StoredManifestGraph } from './stored-manifest-graph.js';

/** One cached tag as the status page's image view shows it. */
export interface CachedImage {
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  /** os/architecture[/variant] of each image the tag holds (an index: its children; an image: its config). */
  readonly platforms: readonly string[];
  /** Bytes of its manifests, configs and layers on this disk. */
  readonly sizeBytes: number;
  readonly lastPulled: string;
  readonly pinned: boolean;
  /** Blobs the stored manifests name, and how many of them are on disk: equal means complete. */
  readonly blobs: { readonly cached: number; readonly referenced: number };
}

export interface ImageListDeps {
  readonly store: BlobStore;
  readonly metadata: MetadataWalker;
  /** Whether `<upstream>/<repository>` is pinned. */
  readonly isPinned: (key: string) => boolean;
}

/** A config blob is small; anything bigger is not read for a platform. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Every cached tag with what it holds, walked from the stored manifests (a read of every manifest). */
export async function listImages(deps: ImageListDeps): Promise<{ images: CachedImage[] }> {
  const { store, metadata, isPinned } = deps;
  const graph = new StoredManifestGraph(store);
  const images: CachedImage[] = [];
  for await (const { upstream, repository, tag, record } of metadata.tags()) {
    const reached = new Set<Digest>();
    await graph.walk(record.digest, record.mediaType, reached);
    let cached = 0;
    let sizeBytes = 0;
    for (const digest of reached) {
      const info = await store.stat(digest);
      if (info === undefined) continue;
      cached++;
      sizeBytes += info.size;
    }
    images.push({
      upstream,
      repository,
      tag,
      digest: record.digest,
      platforms: await platformsOf(graph, store, record.digest, record.mediaType),
      sizeBytes,
      lastPulled: new Date(record.pulledAt ?? record.fetchedAt).toISOString(),
      pinned: isPinned(`${upstream}/${repository}`),
      blobs: { cached, referenced: reached.size },
    });
  }
  images.sort((a, b) => `${a.upstream}/${a.repository}:${a.tag}`.localeCompare(`${b.upstream}/${b.repository}:${b.tag}`));
  return { images };
}

async function platformsOf(graph: StoredManifestGraph, store: BlobStore, digest: Digest, mediaType: string): Promise<string[]> {
  const root = await graph.load(digest, mediaType);
  if (root?.kind === 'index') return root.manifests.flatMap((m) => (m.platform === undefined || m.platform.os === 'unknown' ? [] : [platformName(m.platform)]));
  if (root?.kind !== 'image' || root.config === undefined) return [];
  const info = await store.stat(root.config.digest);
  const body = info !== undefined && info.size <= MAX_CONFIG_BYTES ? await store.open(root.config.digest) : undefined;
  if (body === undefined) return [];
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  try {
    const config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<Platform>;
    return typeof config.os === 'string' && typeof config.architecture === 'string' ? [platformName(config as Platform)] : [];
  } catch {
    return []; // not JSON: an artifact's config says nothing about a platform
  }
}

function platformName(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}
