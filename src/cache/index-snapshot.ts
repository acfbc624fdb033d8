import { open, readFile, rename } from 'node:fs/promises';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { isDigestString, parseDigest } from '../oci/index.js';
import type { IndexedBlob } from './cache-index.js';
import { isErrno, storageLayout } from '../storage/index.js';

/**
 * The cache index on disk (layout.ts: cache-index.json), one snapshot rewritten (temp file +
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

export class IndexSnapshot {
  readonly #file: string;

  constructor(root: string) {
    this.#file = storageLayout(root).indexSnapshot;
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

  /**
   * Serialised in slices with a yield between them: at 100,000 blobs one JSON.stringify would hold
   * the event loop (and every warm pull) for a few hundred ms every flush; a slice takes ~5 ms.
   */
  async save(blobs: readonly IndexedBlob[], now: number): Promise<void> {
    const repoIndex = new Map<string, number>();
    const tmp = `${this.#file}.tmp`;
    const out = await open(tmp, 'w');
    try {
      const parts: string[] = [];
      for (let i = 0; i < blobs.length; i += SAVE_SLICE) {
        const rows = blobs.slice(i, i + SAVE_SLICE).map((b) => JSON.stringify([b.digest, b.size, b.lastAccess, b.repos.map((r) => indexOf(repoIndex, r))]));
        parts.push(rows.join(','));
        await yieldToIo();
      }
      // Repositories first in the file, so they are collected while the rows are built.
      await out.writeFile(`{"v":1,"savedAt":${now},"repos":${JSON.stringify([...repoIndex.keys()])},"blobs":[`);
      for (let i = 0; i < parts.length; i++) await out.writeFile(i === 0 ? parts[i]! : `,${parts[i]!}`);
      await out.writeFile(']}');
      // The pins live only in this file: a power loss must not leave a torn one under its name.
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, this.#file);
  }
}

const SAVE_SLICE = 5000;

function indexOf(index: Map<string, number>, key: string): number {
  let i = index.get(key);
  if (i === undefined) index.set(key, (i = index.size));
  return i;
}
