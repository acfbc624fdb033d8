import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigestString, parseDigest } from '../oci/index.js';
import type { IndexedBlob } from './cache-index.js';
import { isErrno } from './fs-util.js';

/**
 * The cache index on disk: `<root>/v1/cache-index.json`, one snapshot rewritten (temp file +
 * rename) at most every flush interval while something changed, and at close. A warm hit costs no
 * I/O at all; a crash loses at most one interval of recency, never a blob (reconcile adopts files
 * the snapshot does not list). Repository keys are listed once and referenced by index, so 100,000
 * blobs take about 11 MB and parse in ~100 ms.
 */
interface SnapshotFile {
  readonly v: 1;
  readonly savedAt: number;
  readonly repos: readonly string[];
  /** [digest, size, lastAccess, repo indexes] */
  readonly blobs: ReadonlyArray<readonly [string, number, number, readonly number[]]>;
}

export interface LoadedSnapshot {
  readonly savedAt: number;
  readonly blobs: IndexedBlob[];
}

export class RecencyFile {
  readonly #file: string;

  constructor(root: string) {
    this.#file = join(root, 'v1', 'cache-index.json');
  }

  /** Undefined when absent or unreadable (a torn write): reconcile then adopts every file. */
  async load(): Promise<LoadedSnapshot | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as SnapshotFile;
      if (parsed.v !== 1 || !Array.isArray(parsed.blobs) || !Array.isArray(parsed.repos)) return undefined;
      const blobs: IndexedBlob[] = [];
      for (const [digest, size, lastAccess, repoIdx] of parsed.blobs) {
        if (!isDigestString(digest) || typeof size !== 'number' || typeof lastAccess !== 'number') continue;
        const repos = (Array.isArray(repoIdx) ? repoIdx : []).map((i) => parsed.repos[i]).filter((r): r is string => typeof r === 'string');
        blobs.push({ digest: parseDigest(digest), size, lastAccess, repos });
      }
      return { savedAt: typeof parsed.savedAt === 'number' ? parsed.savedAt : 0, blobs };
    } catch {
      return undefined;
    }
  }

  async save(blobs: readonly IndexedBlob[], now: number): Promise<void> {
    const repoIndex = new Map<string, number>();
    const rows = blobs.map((b) => [b.digest, b.size, b.lastAccess, b.repos.map((r) => repoIndex.get(r) ?? (repoIndex.set(r, repoIndex.size), repoIndex.size - 1))] as const);
    const snapshot: SnapshotFile = { v: 1, savedAt: now, repos: [...repoIndex.keys()], blobs: rows };
    const tmp = `${this.#file}.tmp`;
    await writeFile(tmp, JSON.stringify(snapshot));
    await rename(tmp, this.#file);
  }
}
