import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { RepositoryPattern } from '../config/index.js';
import { isErrno, storageLayout, StorageError } from '../storage/index.js';

interface PinFileJson {
  readonly v: 1;
  /** `<upstream>/<repository>`, as in `storage.pin`. */
  readonly repositories: readonly string[];
}

/**
 * Pins that live with the storage rather than the config (layout.ts: pins.json): what
 * `regmirror import --pin` carried in by hand stays pinned across restarts and config changes, as
 * `storage.pin` does. A small JSON file an operator may read and edit while the mirror is stopped.
 */
export class PinFile {
  readonly #file: string;
  /** Adds one at a time: each reads what the one before wrote. */
  #queue: Promise<void> = Promise.resolve();

  constructor(root: string) {
    this.#file = storageLayout(root).pins;
  }

  get path(): string {
    return this.#file;
  }

  /** Empty when there is no file; StorageError when it cannot be read as a pin list. */
  async load(): Promise<RepositoryPattern[]> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw new StorageError(`reading ${this.#file} failed`, { cause: error });
    }
    let parsed: Partial<PinFileJson> | null;
    try {
      parsed = JSON.parse(text) as Partial<PinFileJson> | null;
    } catch (cause) {
      throw new StorageError(`${this.#file} is not JSON: fix or remove it`, { cause });
    }
    const list = parsed?.repositories;
    if (!Array.isArray(list) || !list.every((r) => typeof r === 'string' && r.indexOf('/') > 0)) {
      throw new StorageError(`${this.#file} must be {"v":1,"repositories":["<upstream>/<repository>", …]}`);
    }
    return list.map((r) => ({ upstream: r.slice(0, r.indexOf('/')), repository: r.slice(r.indexOf('/') + 1) }));
  }

  /** Adds patterns (duplicates dropped), written whole and synced before it replaces the old file. */
  add(patterns: readonly RepositoryPattern[]): Promise<void> {
    const next = this.#queue.then(() => this.#add(patterns));
    this.#queue = next.catch(() => {});
    return next;
  }

  async #add(patterns: readonly RepositoryPattern[]): Promise<void> {
    const keys = new Set((await this.load()).map((p) => `${p.upstream}/${p.repository}`));
    const before = keys.size;
    for (const p of patterns) keys.add(`${p.upstream}/${p.repository}`);
    if (keys.size === before) return;
    const body: PinFileJson = { v: 1, repositories: [...keys].sort() };
    await mkdir(path.dirname(this.#file), { recursive: true });
    const tmp = `${this.#file}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.#file);
  }
}
