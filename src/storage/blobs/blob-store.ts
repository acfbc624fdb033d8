import { open as openCallback } from 'node:fs';
import { mkdir, open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseDigest, type Digest } from '../../oci/index.js';
import { BlobReadStream } from './blob-read-stream.js';
import { FsBlobWriter } from './blob-writer.js';
import { isErrno } from '../fs-util.js';
import { blobPath, newTempPath, storageLayout, type StorageLayout } from '../layout.js';
import { StorageError } from '../errors.js';
import { createVerifier, type CreateVerifier } from './verifier.js';
import type { BlobInfo, BlobStore, BlobWriter, ByteSpan } from '../types.js';

const openFd = promisify(openCallback);

export interface FsBlobStoreOptions {
  /** The storage directory; the blob store owns its blobs and tmp folders (layout.ts). */
  readonly root: string;
  /** How writes check their bytes; hashing on the calling thread by default. */
  readonly createVerifier?: CreateVerifier;
}

/** Algorithms that may have a directory under blobs/ (what oci's Digest admits). */
const ALGORITHMS = ['sha256', 'sha512'] as const;
const SHARD = /^[0-9a-f]{2}$/;

/** Blobs as files named by digest, written through temp files (paths: layout.ts). */
export class FsBlobStore implements BlobStore {
  readonly #layout: StorageLayout;
  readonly #blobsDir: string;
  readonly #tmpDir: string;
  readonly #createVerifier: CreateVerifier;

  constructor(options: FsBlobStoreOptions) {
    this.#createVerifier = options.createVerifier ?? createVerifier;
    this.#layout = storageLayout(options.root);
    this.#blobsDir = this.#layout.blobsDir;
    this.#tmpDir = this.#layout.tmpDir;
  }

  async recover(): Promise<{ removedTempFiles: number }> {
    try {
      await mkdir(this.#blobsDir, { recursive: true });
      await mkdir(this.#tmpDir, { recursive: true });
      // Called before serving, so every temp file is a leftover of a crashed process.
      const names = await readdir(this.#tmpDir);
      for (const name of names) await rm(join(this.#tmpDir, name), { force: true, recursive: true });
      return { removedTempFiles: names.length };
    } catch (cause) {
      throw new StorageError(`recovering the blob store at ${this.#blobsDir} failed`, { cause });
    }
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.#pathOf(digest));
      return info.isFile() ? { digest, size: info.size } : undefined;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw new StorageError(`stat of blob ${digest} failed`, { cause: error });
    }
  }

  async open(digest: Digest, span?: ByteSpan): Promise<Readable | undefined> {
    const path = this.#pathOf(digest);
    let fd: number;
    try {
      fd = await openFd(path, 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw new StorageError(`opening blob ${digest} failed`, { cause: error });
    }
    // Opening first (not a path stream) turns "absent" into undefined instead of a late
    // stream error, and keeps the inode readable if eviction unlinks it meanwhile. A numeric fd,
    // not a FileHandle: FileHandle.createReadStream measured ~30% slower on a 512 MiB warm blob.
    return new BlobReadStream({ path, fd, start: span?.start ?? 0, end: span ? span.end + 1 : Infinity });
  }

  async begin(digest: Digest, expectedSize?: number): Promise<BlobWriter> {
    if (expectedSize !== undefined && !(Number.isSafeInteger(expectedSize) && expectedSize >= 0)) {
      throw new RangeError(`expected size must be a non-negative integer, got ${expectedSize}`);
    }
    const tmpPath = newTempPath(this.#layout, digest);
    let handle: FileHandle;
    try {
      handle = await openTemp(tmpPath, this.#tmpDir);
    } catch (cause) {
      throw new StorageError(`creating a temp file for ${digest} failed`, { cause });
    }
    const verifier = this.#createVerifier(digest, expectedSize);
    return new FsBlobWriter({ digest, expectedSize, handle, tmpPath, finalPath: this.#pathOf(digest), verifier });
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.#pathOf(digest));
      return true;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return false;
      throw new StorageError(`deleting blob ${digest} failed`, { cause: error });
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const digest of await this.digests()) {
      const info = await this.stat(digest);
      if (info !== undefined) yield info;
    }
  }

  /**
   * The digests of the committed blob files, from directory listings alone (no stat per file): the
   * start-up reconcile of 100,000 blobs. One array, not an async generator (a hop per digest).
   */
  async digests(): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const algorithm of ALGORITHMS) {
      const algDir = join(this.#blobsDir, algorithm);
      const shards = (await readdirIfExists(algDir)).filter((shard) => SHARD.test(shard));
      const listings = await Promise.all(shards.map((shard) => readdirIfExists(join(algDir, shard))));
      shards.forEach((shard, i) => {
        for (const name of listings[i] ?? []) {
          if (!name.startsWith(shard)) continue;
          try {
            out.push(parseDigest(`${algorithm}:${name}`));
          } catch {
            // not a blob of ours (an editor's backup, a stray file)
          }
        }
      });
    }
    return out;
  }

  #pathOf(digest: Digest): string {
    return blobPath(this.#layout, digest);
  }
}

/** 'wx+': exclusive create, and readable, because followers read through the same handle. */
async function openTemp(path: string, dir: string): Promise<FileHandle> {
  try {
    return await open(path, 'wx+');
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    await mkdir(dir, { recursive: true });
    return await open(path, 'wx+');
  }
}

async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw new StorageError(`listing ${dir} failed`, { cause: error });
  }
}
