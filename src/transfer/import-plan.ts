import {
  computeDigest,
  digestAlgorithm,
  digestHex,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  MediaType,
  OciError,
  parseManifest,
  stripMediaTypeParams,
  type Descriptor,
  type Digest,
  type ParsedManifest,
} from '../oci/index.js';
import { readDockerSave } from './docker-save.js';
import { LayoutError } from './errors.js';
import { formatImageRef, parseImageRef, type ImageRef, type UpstreamNames } from './image-ref.js';
import type { LayoutFiles } from './layout-files.js';
import { OCI_LAYOUT_FILE } from './layout-writer.js';
import { parseSummary, SUMMARY_FILE } from './summary.js';

/** A blob an import copies: a file of the layout, or bytes made here (a docker-save manifest). */
export interface PlannedBlob {
  readonly digest: Digest;
  readonly size: number;
  readonly file: string | undefined;
  readonly bytes: Buffer | undefined;
}

export interface ImportImage {
  readonly ref: ImageRef;
  /** The full reference as printed (`docker.io/library/alpine:3.20`). */
  readonly reference: string;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  /** Every digest the image needs in the cache (manifests, configs, layers), root first. */
  readonly digests: readonly Digest[];
  /** Index children the export's platform filter left out: absent on purpose. */
  readonly filtered: readonly Digest[];
}

export interface ImportPlan {
  readonly images: readonly ImportImage[];
  /** The layout's blobs some image needs, by digest (each once). */
  readonly blobs: ReadonlyMap<Digest, PlannedBlob>;
  /** Needed but not in the layout (an incremental export): the cache must hold them already. */
  readonly external: ReadonlyMap<Digest, string>;
  /** What the input was, for messages: an OCI layout, or a docker save archive. */
  readonly kind: 'oci-layout' | 'docker-save';
}

const MAX_SMALL_FILE = 16 * 1024 * 1024;
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/**
 * Reads and checks everything but blob contents: the layout marker, index.json (or a docker save
 * manifest.json), every manifest (hashed here: they are small and decide the graph), reference
 * names, media types, and that every reference is in the layout, left out by a recorded platform
 * filter, or (incremental) left for the cache to have. Throws LayoutError; touches nothing.
 */
export async function readImportPlan(files: LayoutFiles, names: UpstreamNames): Promise<ImportPlan> {
  const marker = await files.read(OCI_LAYOUT_FILE, 64 * 1024);
  if (marker === undefined) {
    if ((await files.size('manifest.json')) !== undefined) return readDockerSave(files, names);
    throw new LayoutError(`${files.where} is not an OCI image layout: ${OCI_LAYOUT_FILE} is missing`);
  }
  const layout = jsonObject(marker, OCI_LAYOUT_FILE);
  if (typeof layout['imageLayoutVersion'] !== 'string') throw new LayoutError(`${OCI_LAYOUT_FILE} has no imageLayoutVersion`);
  const summaryBytes = await files.read(SUMMARY_FILE, MAX_SMALL_FILE);
  const filteredBy = new Map<string, ReadonlySet<string>>();
  if (summaryBytes !== undefined) for (const i of parseSummary(summaryBytes, SUMMARY_FILE).images) filteredBy.set(i.digest, new Set(i.filtered));
  const indexBytes = await files.read('index.json', MAX_SMALL_FILE);
  if (indexBytes === undefined) throw new LayoutError(`${files.where} has no index.json (an export that did not finish? run it again with the same --output)`);
  const rawIndex = jsonObject(indexBytes, 'index.json');
  const index = parseOrLayoutError(() => parseManifest(indexBytes, MediaType.ociIndex), 'index.json');
  const rawEntries = Array.isArray(rawIndex['manifests']) ? (rawIndex['manifests'] as unknown[]) : [];

  const blobs = new Map<Digest, PlannedBlob>();
  const external = new Map<Digest, string>();
  const manifests = new Map<Digest, ParsedManifest>();
  const images: ImportImage[] = [];
  for (const [i, entry] of index.manifests.entries()) {
    const where = `index.json entry ${i} (${entry.digest})`;
    const ref = entryRef(rawEntries[i], where, names);
    if (ref.digest !== undefined && ref.digest !== entry.digest) throw new LayoutError(`${where} is named ${formatImageRef(ref)}, whose digest differs`);
    checkManifestType(entry, where);
    const filtered = filteredBy.get(entry.digest) ?? new Set<string>();
    const digests: Digest[] = [];
    const skipped: Digest[] = [];
    const visit = async (d: Descriptor, parent: string, depth: number): Promise<void> => {
      if (digests.includes(d.digest)) return;
      const size = await files.size(blobFile(d.digest));
      if (size === undefined) {
        if (MANIFEST_MEDIA_TYPES.includes(stripMediaTypeParams(d.mediaType))) {
          if (filtered.has(d.digest)) return void skipped.push(d.digest);
          throw new LayoutError(`${parent} refers to manifest ${d.digest}, which is not in the layout`);
        }
        digests.push(d.digest);
        external.set(d.digest, `${parent} refers to ${d.digest}, which is neither in the layout nor in the cache`);
        return;
      }
      if (size !== d.size) throw new LayoutError(`blob ${d.digest} is ${size} bytes, but ${parent} says ${d.size}`);
      digests.push(d.digest);
      blobs.set(d.digest, { digest: d.digest, size, file: blobFile(d.digest), bytes: undefined });
      if (!MANIFEST_MEDIA_TYPES.includes(stripMediaTypeParams(d.mediaType))) return;
      if (depth > 4) throw new LayoutError(`${where}: indexes nested deeper than 4 levels`);
      const manifest = manifests.get(d.digest) ?? (await readManifest(files, d));
      manifests.set(d.digest, manifest);
      for (const child of manifest.manifests) checkManifestType(child, `manifest ${d.digest}`);
      for (const child of [...manifest.manifests, ...(manifest.config ? [manifest.config] : []), ...manifest.layers]) {
        await visit(child, `manifest ${d.digest}`, depth + 1);
      }
    };
    await visit(entry, where, 0);
    images.push({ ref, reference: formatImageRef(ref), digest: entry.digest, mediaType: entry.mediaType, size: entry.size, digests, filtered: skipped });
  }
  if (images.length === 0) throw new LayoutError(`${files.where}: index.json lists no image`);
  return { images, blobs, external, kind: 'oci-layout' };
}

/** Where a layout keeps a blob (image-spec image-layout.md). */
export function blobFile(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/** The full reference naming an index.json entry: containerd's annotation, else the OCI ref name. */
function entryRef(raw: unknown, where: string, names: UpstreamNames): ImageRef {
  const annotations = (raw as { annotations?: Record<string, unknown> } | undefined)?.annotations ?? {};
  const containerd = annotations[CONTAINERD_NAME];
  const refName = annotations[REF_NAME];
  const name = typeof containerd === 'string' ? containerd : typeof refName === 'string' ? refName : undefined;
  if (name === undefined) throw new LayoutError(`${where} has no ${REF_NAME} annotation: an image needs a full reference such as docker.io/library/alpine:3.20`);
  try {
    return parseImageRef(name, names);
  } catch (err) {
    throw new LayoutError(`${where}: ${(err as Error).message}`);
  }
}

function checkManifestType(d: Descriptor, where: string): void {
  if (!MANIFEST_MEDIA_TYPES.includes(stripMediaTypeParams(d.mediaType))) {
    throw new LayoutError(`${where} lists ${d.digest} with the unknown media type ${JSON.stringify(d.mediaType)} (expected an image manifest or index)`);
  }
}

/** A manifest's bytes, hashed against its name, parsed with the type its parent gave it. */
async function readManifest(files: LayoutFiles, d: Descriptor): Promise<ParsedManifest> {
  const bytes = (await files.read(blobFile(d.digest), MAX_MANIFEST_BYTES)) ?? Buffer.alloc(0);
  const actual = computeDigest(bytes, digestAlgorithm(d.digest));
  if (actual !== d.digest) throw new LayoutError(`blob ${d.digest} does not match its name: its bytes hash to ${actual}`);
  const parsed = parseOrLayoutError(() => parseManifest(bytes, d.mediaType), `manifest ${d.digest}`);
  if (parsed.kind !== 'index' && parsed.kind !== 'image') throw new LayoutError(`manifest ${d.digest} has the unknown media type ${JSON.stringify(parsed.mediaType)}`);
  return parsed;
}

function parseOrLayoutError<T>(read: () => T, what: string): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof OciError) throw new LayoutError(`${what} is not valid: ${err.message}`);
    throw err;
  }
}

export function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new LayoutError(`${what} is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LayoutError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
