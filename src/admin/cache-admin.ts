import { createHash } from 'node:crypto';
import { formatTime } from '../config/index.js';
import { digestAlgorithm, digestHex, RepositoryFilter, type Digest } from '../oci/index.js';
import { listTempFiles, removeTempFile, tagLastUsed, type BlobStore, type MetadataWalker, type TagEntry } from '../storage/index.js';
import type { BlobRemover } from './blob-remover.js';
import { listCache } from './cache-listing.js';
import type { PinnedBlobs } from './pinned-blobs.js';
import { StoredManifestGraph } from './stored-manifest-graph.js';
import type { GcResult, LsRequest, LsResult, PruneRequest, PruneResult, VerifyResult } from './protocol.js';

const REMOVE_BATCH = 32;

/** Where pins come from with a config (app-config.ts configuredPins, then pins.json), as `cache ls` names them. */
export const PIN_SOURCES: readonly string[] = ['storage.pin', 'sync entries', 'pins.json'];

export interface CacheAdminDeps {
  readonly root: string;
  readonly store: BlobStore;
  readonly metadata: MetadataWalker;
  readonly remover: BlobRemover;
  /** What pins protect: gc never collects it, reached by a tag or not. */
  readonly pinned: PinnedBlobs;
  /**
   * Whether pins name a repository (asked at each command: pins change while a server runs). gc
   * also keeps every blob the metadata links to a pinned repository, which survives what `pinned`
   * may not know (a recency snapshot lost to a crash, a pin added after the content came).
   */
  readonly isPinned: (upstream: string, repository: string) => boolean;
  /** Where those pins come from, for `cache ls` to say (without a config: pins.json only). Default: all of them. */
  readonly pinSources?: readonly string[];
  /**
   * Temp files younger than this may belong to a download in flight (a running server); undefined
   * when the caller holds the storage alone, so every temp file is an orphan.
   */
  readonly tempGraceMs: number | undefined;
  readonly now?: () => number;
}

/** `regmirror cache ...`: the work itself, the same whether the server or the CLI runs it. */
export class CacheAdmin {
  private readonly now: () => number;

  constructor(private readonly deps: CacheAdminDeps) {
    this.now = deps.now ?? Date.now;
  }

  ls(request: LsRequest = { incomplete: false }): Promise<LsResult> {
    const { store, metadata, isPinned, pinSources = PIN_SOURCES } = this.deps;
    return listCache({ store, metadata, isPinned, pinSources, matches: repoMatcher(request.pattern) }, request);
  }

  async verify(fix: boolean): Promise<VerifyResult> {
    const { store, remover } = this.deps;
    const result: { checked: number; bytes: number; corrupt: Array<{ digest: string; size: number; removed: boolean }> } = { checked: 0, bytes: 0, corrupt: [] };
    for await (const blob of store.list()) {
      // A span of the known size lets the reader size its buffers to small blobs (most are) instead of 1 MiB each.
      const stream = await store.open(blob.digest, blob.size > 0 ? { start: 0, end: blob.size - 1 } : undefined);
      if (stream === undefined) continue; // deleted meanwhile
      const hash = createHash(digestAlgorithm(blob.digest));
      for await (const chunk of stream) hash.update(chunk as Buffer);
      result.checked++;
      result.bytes += blob.size;
      if (hash.digest('hex') === digestHex(blob.digest)) continue;
      result.corrupt.push({ digest: blob.digest, size: blob.size, removed: fix ? await remover.remove(blob.digest) : false });
    }
    return result;
  }

  /**
   * Blobs are listed before the tags are read: a blob committed after the listing is no candidate,
   * and one committed before it was fetched for a tag that is already recorded (a manifest is stored
   * and its tag set before a client asks for its layers), so a pull in flight loses nothing.
   */
  async gc(options: { dryRun: boolean; dropping?: ReadonlySet<string> } = { dryRun: false }): Promise<GcResult> {
    const { store, metadata, remover, root } = this.deps;
    const onDisk = await collect(store.list());
    const keep = await this.reachable(options.dropping);
    for (const digest of await this.deps.pinned()) keep.add(digest);
    for await (const link of metadata.links()) if (this.deps.isPinned(link.upstream, link.repository)) keep.add(link.digest);
    const blobs: Array<{ digest: string; size: number }> = [];
    const garbage = onDisk.filter((b) => !keep.has(b.digest));
    // A few removals at a time: the embedded log then appends their records' deletions in one write.
    for (let i = 0; i < garbage.length; i += REMOVE_BATCH) {
      const batch = garbage.slice(i, i + REMOVE_BATCH);
      const done = options.dryRun ? batch.map(() => true) : await Promise.all(batch.map((b) => remover.remove(b.digest)));
      batch.forEach((b, j) => {
        if (done[j] === true) blobs.push({ digest: b.digest, size: b.size });
      });
    }
    let records = 0;
    // Shared records describe upstreams, true for every replica; only the embedded ones go with the files.
    if (!metadata.shared) {
      const stale = async (digest: Digest) => !keep.has(digest) && (options.dryRun || (await store.stat(digest)) === undefined);
      for (const { digest } of await collect(metadata.manifests())) {
        if (!(await stale(digest))) continue;
        if (!options.dryRun) await metadata.deleteManifest(digest);
        records++;
      }
      for (const { digest } of await collect(metadata.blobs())) {
        if (!(await stale(digest))) continue;
        if (!options.dryRun) await metadata.deleteBlob(digest);
        records++;
      }
    }
    const cutoff = this.deps.tempGraceMs === undefined ? Infinity : this.now() - this.deps.tempGraceMs;
    const temps = (await listTempFiles(root)).filter((f) => f.mtimeMs <= cutoff);
    if (!options.dryRun) for (const f of temps) await removeTempFile(root, f.name);
    return {
      dryRun: options.dryRun,
      blobs,
      bytes: blobs.reduce((sum, b) => sum + b.size, 0),
      metadataRecords: records,
      tempFiles: temps.length,
      tempBytes: temps.reduce((sum, f) => sum + f.size, 0),
    };
  }

  async prune(request: PruneRequest): Promise<PruneResult> {
    const matches = repoMatcher(request.repo);
    const cutoff = request.olderThanMs === undefined ? undefined : this.now() - request.olderThanMs;
    const chosen = (await collect(this.deps.metadata.tags())).filter(
      (e) => matches(e) && (cutoff === undefined || tagLastUsed(e.record) < cutoff),
    );
    if (!request.dryRun) for (const e of chosen) await this.deps.metadata.deleteTag(e.upstream, e.repository, e.tag);
    const gc = await this.gc({ dryRun: request.dryRun, dropping: new Set(chosen.map(tagId)) });
    const tags = chosen.map((e) => ({
      upstream: e.upstream,
      repository: e.repository,
      tag: e.tag,
      digest: e.record.digest,
      pinned: this.deps.isPinned(e.upstream, e.repository),
      lastSynced: e.record.syncedAt === undefined ? null : formatTime(e.record.syncedAt),
    }));
    return { tags, gc };
  }

  private async reachable(dropping: ReadonlySet<string> | undefined): Promise<Set<Digest>> {
    const walker = new StoredManifestGraph(this.deps.store);
    const reached = new Set<Digest>();
    for await (const entry of this.deps.metadata.tags()) {
      if (dropping?.has(tagId(entry))) continue;
      await walker.walk(entry.record.digest, entry.record.mediaType, reached);
    }
    return reached;
  }
}

function tagId(e: Pick<TagEntry, 'upstream' | 'repository' | 'tag'>): string {
  return `${e.upstream}/${e.repository}:${e.tag}`;
}

/**
 * `--repo`: a repository glob (oci/repository-glob.ts) matched against the repository
 * (`library/alpine`) or the upstream and repository (`docker.io/library/alpine`). Throws
 * RepositoryGlobError for a pattern outside the grammar.
 */
export function repoMatcher(pattern: string | undefined): (e: Pick<TagEntry, 'upstream' | 'repository'>) => boolean {
  if (pattern === undefined) return () => true;
  const filter = new RepositoryFilter(pattern);
  return (e) => filter.matches(e.upstream, e.repository);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
