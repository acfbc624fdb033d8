import type { Readable } from 'node:stream';
import type { RepositoryPattern } from '../config/index.js';
import { pump, type Ingest, type ReferenceSink, type RepoRef } from '../mirror/index.js';
import {
  isDigestString,
  MANIFEST_MEDIA_TYPES,
  parseDigest,
  parseManifest,
  parseReferrersIndex,
  referrersIndex,
  parseRepositoryName,
  parseTag,
  stripMediaTypeParams,
  walkManifestGraph,
  type Descriptor,
  type Digest,
  type ParsedManifest,
  type ReferrerDescriptor,
} from '../oci/index.js';
import { DigestMismatchError, SizeMismatchError, type BlobStore, type BlobWriter, type ReferrersStore } from '../storage/index.js';
import { TransferError } from './errors.js';
import { BlobMismatchError } from './verified-copy.js';

/** One image made visible: its graph is checked in the cache, then linked, (pinned,) then tagged. */
export interface CommitRequest {
  readonly upstream: string;
  readonly repository: string;
  /** Undefined: the image is imported by digest only. */
  readonly tag: string | undefined;
  readonly digest: Digest;
  readonly mediaType: string;
  /** Index children absent on purpose (the export's platform filter). */
  readonly filtered: readonly Digest[];
  readonly pin: boolean;
}

/**
 * Where an import puts content: the storage of this process, or a serve's over its admin socket.
 * Blobs go in unlinked (nothing serves them yet); commit makes one image visible.
 */
export interface ImportTarget {
  /** The digests of `digests` whose bytes the cache does not hold. */
  missing(digests: readonly Digest[]): Promise<Digest[]>;
  /** Verified again as it is written (the cache's writer hashes every byte); destroys `body` on failure. */
  putBlob(digest: Digest, size: number, body: Readable): Promise<void>;
  commit(request: CommitRequest): Promise<void>;
}

export interface LocalImportDeps {
  readonly store: Pick<BlobStore, 'stat' | 'open'>;
  readonly ingest: Ingest;
  /** The blob cache: pins and recency follow the repositories recorded here. */
  readonly references: Pick<ReferenceSink, 'recordRepository'>;
  /** Pins a repository for good (the storage's pin file and the live pin set). */
  readonly pin: (pattern: RepositoryPattern) => Promise<void>;
  /** Where an imported signature or SBOM is listed as a referrer of its subject, for the referrers API offline. */
  readonly referrers?: ReferrersStore;
  readonly now?: () => number;
}

/** Bytes written ahead of the disk before the oldest write must be on it: 16 of a file stream's 64 KiB chunks. */
const WRITE_WINDOW = 1024 * 1024;

export function localImportTarget(deps: LocalImportDeps): ImportTarget {
  return {
    async missing(digests) {
      const out: Digest[] = [];
      for (const d of digests) if ((await deps.store.stat(d)) === undefined) out.push(d);
      return out;
    },
    async putBlob(digest, size, body) {
      const { writer, kept } = await deps.ingest.begin(digest, size);
      if (!kept) {
        await writer.abort(new Error('not cached'));
        throw new TransferError(`no room for ${digest} (${size} bytes) in the cache: raise storage.maxSize, or storage is not writable`);
      }
      await pumpInto(body, writer);
    },
    commit: (request) => commitImage(deps, request),
  };
}

async function pumpInto(body: Readable, writer: BlobWriter): Promise<void> {
  try {
    await pump(body, writer, WRITE_WINDOW);
  } catch (err) {
    if (err instanceof DigestMismatchError || err instanceof SizeMismatchError) throw new BlobMismatchError(`${writer.digest}: ${err.message}`);
    throw err;
  }
}

/**
 * Reads the image's graph from the cache itself (whatever the caller claims): every manifest must
 * be there, every config and layer too, and only the listed index children may be absent. Then the
 * links (configs and layers, child manifests, the root last), the pin, the repository's references,
 * and the tag: a tag never names an image whose parts are not all served.
 */
async function commitImage(deps: LocalImportDeps, request: CommitRequest): Promise<void> {
  const ref: RepoRef = { upstream: request.upstream, name: parseRepositoryName(request.repository) };
  const tag = request.tag === undefined ? undefined : parseTag(request.tag);
  const filtered = new Set(request.filtered);
  const manifests: Array<{ digest: Digest; mediaType: string; size: number }> = [];
  const leaves = new Map<Digest, Descriptor>();
  let rootBytes: Buffer | undefined;
  const missing = (d: Digest) => new TransferError(`${request.upstream}/${request.repository}: ${d} is not in the cache, so ${request.digest} cannot be made visible`);
  await walkManifestGraph(
    { digest: request.digest, mediaType: request.mediaType },
    {
      load: async (digest, mediaType) => {
        const bytes = await readStored(deps.store, digest);
        if (bytes === undefined) throw missing(digest);
        if (digest === request.digest) rootBytes = bytes;
        const parsed: ParsedManifest = parseManifest(bytes, mediaType);
        manifests.push({ digest, mediaType: parsed.mediaType, size: bytes.length });
        return parsed;
      },
      descend: (child, parent) => {
        if (parent.kind === 'index' && MANIFEST_MEDIA_TYPES.includes(stripMediaTypeParams(child.mediaType))) return !filtered.has(child.digest);
        leaves.set(child.digest, child);
        return false;
      },
    },
    { maxDepth: 4 },
  );
  for (const d of leaves.values()) {
    const info = await deps.store.stat(d.digest);
    if (info === undefined) throw missing(d.digest);
  }
  for (const d of leaves.values()) await deps.ingest.link(ref, d.digest, d.size);
  for (const m of [...manifests].reverse()) await deps.ingest.manifest(ref, m.digest, m.mediaType, m.size);
  if (request.pin) await deps.pin({ upstream: ref.upstream, repository: ref.name });
  deps.references.recordRepository(ref.upstream, ref.name, [...manifests.map((m) => m.digest), ...leaves.keys()]);
  const root = manifests[0];
  if (tag !== undefined && root !== undefined) await deps.ingest.tag(ref, tag, root, 'import');
  if (root !== undefined && rootBytes !== undefined && deps.referrers !== undefined) await listAsReferrer(deps.referrers, ref, root, rootBytes, deps.now ?? Date.now);
}

/**
 * A manifest with a `subject` (a signature, an SBOM) joins its subject's referrers list, so the
 * referrers API answers for it here as upstream would: an offline upstream's list is never
 * refreshed, a connected one's is fetched again after the tag TTL.
 */
async function listAsReferrer(store: ReferrersStore, ref: RepoRef, root: { digest: Digest; mediaType: string; size: number }, bytes: Buffer, now: () => number): Promise<void> {
  const doc = JSON.parse(bytes.toString('utf8')) as { subject?: { digest?: unknown }; artifactType?: unknown; config?: { mediaType?: unknown }; annotations?: unknown };
  const subject = doc.subject?.digest;
  if (typeof subject !== 'string' || !isDigestString(subject)) return;
  const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : typeof doc.config?.mediaType === 'string' ? doc.config.mediaType : undefined;
  const annotations = typeof doc.annotations === 'object' && doc.annotations !== null && Object.values(doc.annotations).every((v) => typeof v === 'string') ? (doc.annotations as Record<string, string>) : undefined;
  const entry: ReferrerDescriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size, ...(artifactType === undefined ? {} : { artifactType }), ...(annotations === undefined ? {} : { annotations }) };
  const key = parseDigest(subject);
  const known = await store.getReferrers(ref.upstream, ref.name, key, '');
  const listed = known?.body ? parseReferrersIndex(known.body).filter((d) => d.digest !== root.digest) : [];
  await store.setReferrers(ref.upstream, ref.name, key, '', { ...(known?.next === undefined ? {} : { next: known.next }), body: referrersIndex([...listed, entry], undefined).toString('utf8'), fetchedAt: now() });
}

async function readStored(store: Pick<BlobStore, 'open'>, digest: Digest): Promise<Buffer | undefined> {
  const stream = await store.open(digest);
  if (stream === undefined) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
