import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  computeDigest,
  digestAlgorithm,
  isIndexMediaType,
  MediaType,
  parseManifest,
  referrerWanted,
  walkManifestGraph,
  type Descriptor,
  type Digest,
  type ParsedManifest,
  type Reference,
} from '../oci/index.js';
import type { RepoRef } from '../mirror/index.js';
import { platformSelected } from '../sync/index.js';
import { TransferError } from './errors.js';
import type { ExportSource } from './export-source.js';
import { formatImageRef, type ImageRef } from './image-ref.js';
import type { LayoutWriter } from './layout-writer.js';
import { knownAfter, SUMMARY_FILE, SUMMARY_FORMAT, type ExportedImage, type ExportSummary } from './summary.js';
import type { TransferProgress } from './progress.js';

export interface ExportItem {
  readonly ref: ImageRef;
  /** `os/arch[/variant]`; empty: every platform. */
  readonly platforms: readonly string[];
  /** Also the referrers (signatures, SBOMs) of its manifests: all, or those of these artifact types. */
  readonly referrers?: boolean | readonly string[];
}

export interface ExportRequest {
  readonly items: readonly ExportItem[];
  /** The `--platform` filter as given, for the summary. */
  readonly platforms: readonly string[];
  /** The previous export's summary (`--since`): blobs it or its predecessors carried stay out. */
  readonly since: ExportSummary | undefined;
  readonly version: string;
  readonly now?: () => Date;
}

export interface ByteCount {
  readonly blobs: number;
  readonly bytes: number;
}

export interface ExportResult {
  readonly summary: ExportSummary;
  /** Blobs written by this run. */
  readonly written: ByteCount;
  /** Blobs an earlier, interrupted run of the same export had written already. */
  readonly reused: ByteCount;
  /** Blobs left out because the other side has them (`--since`). */
  readonly leftOut: ByteCount;
  /** One line per image that failed; the layout then gets no index.json. */
  readonly errors: readonly string[];
}

/** Real trees are one level deep, two with attestations in nested indexes. */
const MAX_DEPTH = 4;
/** Configs up to this size are read whole: the platform of a single-platform image is in there. */
const MAX_CONFIG = 1024 * 1024;
const CONFIG_TYPES: ReadonlySet<string> = new Set([MediaType.ociConfig, MediaType.dockerConfig]);

/**
 * Writes every item's manifests (always: they are small, and they make each layout readable on its
 * own) and the blobs of the selected platforms, each once, then index.json and the summary. An item
 * that fails is reported and the others go on; without index.json the layout is visibly unfinished,
 * and the next run with the same output continues from the blobs already there.
 */
export async function runExport(request: ExportRequest, source: ExportSource, writer: LayoutWriter, progress?: TransferProgress): Promise<ExportResult> {
  const known = request.since === undefined ? new Set<Digest>() : knownAfter(request.since);
  const carried = new Map<Digest, number>();
  const counts = { written: { blobs: 0, bytes: 0 }, reused: { blobs: 0, bytes: 0 }, leftOut: { blobs: 0, bytes: 0 } };
  const images: Array<ExportedImage & { readonly size: number }> = [];
  const entries: Descriptor[] = [];
  const names: string[] = [];
  const errors: string[] = [];

  const put = async (d: Descriptor, body: () => Promise<Readable>, tap?: (chunk: Buffer) => void): Promise<void> => {
    if (carried.has(d.digest)) return;
    if (writer.has(d.digest, d.size)) {
      counts.reused.blobs++;
      counts.reused.bytes += d.size;
    } else {
      await writer.putBlob(d.digest, d.size, await body(), tap);
      counts.written.blobs++;
      counts.written.bytes += d.size;
    }
    carried.set(d.digest, d.size);
  };

  /** One image into the layout; its index.json entry and summary row. */
  const exportImage = async (item: ExportItem, reference: string, repo: RepoRef): Promise<ExportPlan> => {
    const plan = await planExport(source, repo, item);
    const leaves = plan.leaves.filter((d) => !known.has(d.digest));
    const bytes = [...plan.manifests.values()].reduce((n, m) => n + m.bytes.length, 0) + leaves.reduce((n, d) => n + d.size, 0);
    progress?.imageStarted(reference, plan.manifests.size + leaves.length, bytes);
    try {
      for (const [digest, m] of plan.manifests) {
        await put({ digest, mediaType: m.mediaType, size: m.bytes.length }, async () => Readable.from([m.bytes]));
        progress?.blobDone(reference, m.bytes.length);
      }
      let platforms = plan.platforms;
      for (const d of plan.leaves) {
        if (known.has(d.digest)) {
          if (!carried.has(d.digest)) {
            counts.leftOut.blobs++;
            counts.leftOut.bytes += d.size;
          }
        } else if (plan.single && CONFIG_TYPES.has(d.mediaType) && d.size <= MAX_CONFIG) {
          const config = await readAll(source, repo, d.digest);
          platforms = platformOfConfig(config);
          await put(d, async () => Readable.from([config]));
        } else {
          await put(d, async () => (await source.blob(repo, d.digest)).body);
        }
        if (!known.has(d.digest)) progress?.blobDone(reference, d.size);
      }
      const root = plan.root;
      entries.push({ mediaType: root.mediaType, digest: root.digest, size: root.size });
      names.push(reference);
      images.push({ reference, digest: root.digest, mediaType: root.mediaType, platforms, size: plan.size, filtered: plan.filtered });
      progress?.imageFinished(reference, true);
      return plan;
    } catch (err) {
      progress?.imageFinished(reference, false);
      throw err;
    }
  };

  for (const item of request.items) {
    const reference = formatImageRef(item.ref);
    const repo: RepoRef = { upstream: item.ref.upstream, name: item.ref.repository };
    try {
      const plan = await exportImage(item, reference, repo);
      if (item.referrers !== undefined && item.referrers !== false) {
        for (const ref of await referrerRefs(source, repo, item.ref, [...plan.manifests.keys()], item.referrers)) {
          await exportImage({ ref, platforms: [] }, formatImageRef(ref), repo);
        }
      }
    } catch (err) {
      errors.push(`${reference}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const now = request.now?.() ?? new Date();
  const summary: ExportSummary = {
    format: SUMMARY_FORMAT,
    id: randomUUID(),
    createdAt: now.toISOString(),
    regmirror: request.version,
    since: request.since === undefined ? null : { id: request.since.id, createdAt: request.since.createdAt },
    platforms: request.platforms,
    images,
    carried: { blobs: carried.size, bytes: [...carried.values()].reduce((a, b) => a + b, 0), digests: [...carried.keys()].sort() },
    baseline: [...known].sort(),
  };
  if (errors.length === 0) {
    await writer.putFile('index.json', indexJson(entries, names));
    await writer.putFile(SUMMARY_FILE, Buffer.from(`${JSON.stringify(summary, null, 2)}\n`));
    await writer.finish();
  } else await writer.abandon();
  return { summary, ...counts, errors };
}

/** The images that carry an image's signatures and SBOMs: the referrers of its manifests, filtered to `wanted` artifact types. */
async function referrerRefs(source: ExportSource, repo: RepoRef, image: ImageRef, subjects: readonly Digest[], wanted: true | readonly string[]): Promise<ImageRef[]> {
  const refs: ImageRef[] = [];
  for (const subject of subjects) {
    for (const { reference, artifactType } of await source.referrers(repo, subject)) {
      if (!referrerWanted(wanted, artifactType)) continue;
      refs.push(reference.kind === 'digest' ? { ...image, tag: undefined, digest: reference.digest } : { ...image, tag: reference.tag, digest: undefined });
    }
  }
  return refs;
}

interface ExportPlan {
  readonly root: { readonly digest: Digest; readonly mediaType: string; readonly size: number };
  /** Every manifest that travels (root, selected children, nested indexes), in walk order. */
  readonly manifests: Map<Digest, { readonly mediaType: string; readonly bytes: Buffer }>;
  /** Configs and layers of the selected image manifests, each once. */
  readonly leaves: Descriptor[];
  readonly filtered: Digest[];
  readonly platforms: string[];
  /** The root is an image manifest (its platform is in its config). */
  readonly single: boolean;
  /** Bytes of every manifest and leaf, whether it travels now or travelled earlier. */
  readonly size: number;
}

/** The root through the mirror, and for an index the children of the selected platforms only. */
export async function planExport(source: ExportSource, repo: RepoRef, item: ExportItem): Promise<ExportPlan> {
  const reference: Reference = item.ref.digest !== undefined ? { kind: 'digest', digest: item.ref.digest } : { kind: 'tag', tag: item.ref.tag! };
  const manifests = new Map<Digest, { mediaType: string; bytes: Buffer }>();
  const fetchManifest = async (r: Reference, expected?: Digest) => {
    const m = await source.manifest(repo, r);
    // The mirror verified these bytes; a socket in between might not have kept them whole.
    const actual = computeDigest(m.bytes, digestAlgorithm(m.digest));
    if (actual !== m.digest || (expected !== undefined && actual !== expected)) throw new TransferError(`manifest ${expected ?? m.digest} arrived as ${actual}`);
    manifests.set(m.digest, { mediaType: m.mediaType, bytes: m.bytes });
    return { digest: m.digest, mediaType: m.mediaType, parsed: parseManifest(m.bytes, m.mediaType) };
  };
  const top = await fetchManifest(reference);
  const leaves = new Map<Digest, Descriptor>();
  const filtered: Digest[] = [];
  const platforms: string[] = [];
  await walkManifestGraph(
    { digest: top.digest, mediaType: top.mediaType, parsed: top.parsed },
    {
      load: async (digest) => (await fetchManifest({ kind: 'digest', digest }, digest)).parsed,
      descend: (child: Descriptor, parent: ParsedManifest) => {
        if (parent.kind !== 'index') {
          leaves.set(child.digest, child);
          return false;
        }
        const nested = child.platform === undefined && isIndexMediaType(child.mediaType);
        if (nested || platformSelected(child, item.platforms)) {
          if (child.platform !== undefined) platforms.push(platformString(child.platform));
          return true;
        }
        filtered.push(child.digest);
        return false;
      },
    },
    { maxDepth: MAX_DEPTH },
  );
  const size = [...manifests.values()].reduce((n, m) => n + m.bytes.length, 0) + [...leaves.values()].reduce((n, d) => n + d.size, 0);
  return {
    root: { digest: top.digest, mediaType: top.mediaType, size: manifests.get(top.digest)?.bytes.length ?? 0 },
    manifests,
    leaves: [...leaves.values()],
    filtered,
    platforms: [...new Set(platforms)],
    single: top.parsed.kind !== 'index',
    size,
  };
}

function platformString(p: { os: string; architecture: string; variant?: string }): string {
  return [p.os, p.architecture, ...(p.variant === undefined ? [] : [p.variant])].join('/');
}

function platformOfConfig(config: Buffer): string[] {
  try {
    const c = JSON.parse(config.toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return [];
    return [platformString({ os: c.os, architecture: c.architecture, ...(typeof c.variant === 'string' ? { variant: c.variant } : {}) })];
  } catch {
    return []; // an artifact's config need not be JSON
  }
}

async function readAll(source: ExportSource, repo: RepoRef, digest: Digest): Promise<Buffer> {
  const { body } = await source.blob(repo, digest);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** index.json: one entry per image, named the way skopeo (`ref.name`) and containerd (`image.name`) look for it. */
function indexJson(entries: readonly Descriptor[], names: readonly string[]): Buffer {
  const manifests = entries.map((d, i) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    annotations: { 'io.containerd.image.name': names[i], 'org.opencontainers.image.ref.name': names[i] },
  }));
  return Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, null, 2)}\n`);
}
