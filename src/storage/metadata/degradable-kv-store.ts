import { FileKvStore, type FileKvStoreOptions } from './file-kv-store.js';
import type { StorageHealth } from '../health.js';

/**
 * The embedded metadata log, tolerant of a full or read-only disk: a failed append is reported to
 * StorageHealth and swallowed, because the value is already in memory and the mirror must keep
 * answering (tags, links) while storage is degraded. Lost lines cost a refetch after a restart,
 * never a wrong answer: every record is re-checked against the files or upstream. Other errors,
 * and every error of other backends, still reach the caller.
 */
export class DegradableFileKvStore extends FileKvStore {
  readonly #health: StorageHealth;

  constructor(options: FileKvStoreOptions & { readonly health: StorageHealth }) {
    super(options);
    this.#health = options.health;
  }

  override set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    return this.#tolerant(super.set(key, value, ttl));
  }

  override delete(key: string): Promise<boolean> {
    return this.#tolerant(super.delete(key));
  }

  override deleteMany(keys: string[]): Promise<boolean> {
    return this.#tolerant(super.deleteMany(keys));
  }

  async #tolerant(write: Promise<boolean>): Promise<boolean> {
    try {
      return await write;
    } catch (error) {
      if (this.#health.report(error)) return true;
      throw error;
    }
  }
}
