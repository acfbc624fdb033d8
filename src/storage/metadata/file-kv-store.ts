import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { isErrno, syncDir } from '../fs-util.js';
import { storageLayout } from '../layout.js';
import { StorageError } from '../errors.js';
import { deleteLine, replayLog, setLine, writeSnapshot, writeText, type SkippedLine } from './kv-log.js';

export type { SkippedLine } from './kv-log.js';

export interface FileKvStoreOptions {
  /** The storage directory; the log's path comes from layout.ts. */
  readonly root: string;
  /** Compact when the log holds more than this many lines per live entry. Default 2. */
  readonly compactRatio?: number;
  /** ...and more than this many lines, so a small log is not rewritten on every write. Default 1000. */
  readonly compactMinLines?: number;
  /** Told about each line skipped while loading: a torn last line after a crash, or a corrupt one. */
  readonly onSkippedLine?: (info: SkippedLine) => void;
  /** The clock entries with a ttl expire by. Default Date.now. */
  readonly now?: () => number;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * A keyv store: an append-only JSON-lines log replayed into a Map at `open()`.
 * The npm file stores rewrite the whole file on every change, which does not scale to
 * 100,000 blob records, and sqlite needs a native build. Appends are batched: every
 * set/delete made while a write is in flight goes out in the next single write.
 * Writes are not fsynced one by one: this is a cache index, a power loss costs at most the
 * newest records, and the blobs themselves are synced. Compaction and close() do fsync.
 */
export class FileKvStore extends EventEmitter implements KeyvStoreAdapter {
  /** keyv sets this; used by clear() and iterator() to stay inside our namespace. */
  namespace?: string | undefined;
  readonly opts: { readonly dialect: string; readonly url: string };
  readonly #dir: string;
  readonly #file: string;
  readonly #compactRatio: number;
  readonly #compactMinLines: number;
  readonly #onSkippedLine: ((info: SkippedLine) => void) | undefined;
  readonly #now: () => number;
  readonly #values = new Map<string, unknown>();
  /** Only entries set with a ttl; usually empty. */
  readonly #expires = new Map<string, number>();
  #handle: FileHandle | undefined;
  #logLines = 0;
  #pending: string[] = [];
  #waiters: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #opening: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: FileKvStoreOptions) {
    super();
    const layout = storageLayout(options.root);
    this.#dir = layout.base;
    this.#file = layout.metadataLog;
    this.#compactRatio = options.compactRatio ?? 2;
    this.#compactMinLines = options.compactMinLines ?? 1000;
    this.#onSkippedLine = options.onSkippedLine;
    this.#now = options.now ?? Date.now;
    this.opts = { dialect: 'regmirror-jsonl', url: this.#file };
  }

  /** Number of lines in the log (sets and deletes), for tests and diagnostics. */
  get logLines(): number {
    return this.#logLines;
  }

  open(): Promise<void> {
    this.#opening ??= this.#open().catch((cause: unknown) => {
      this.#opening = undefined;
      throw new StorageError(`opening the metadata log ${this.#file} failed`, { cause });
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    // A compaction that crashed before its rename leaves only this; the log is intact.
    await rm(this.#tmpFile(), { force: true });
    let text = '';
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    const entries = { values: this.#values, expires: this.#expires };
    const { lines, clean } = replayLog(text, entries, this.#now(), this.#onSkippedLine);
    this.#logLines = lines;
    this.#handle = await open(this.#file, 'a');
    try {
      // Rewrite at once if anything was skipped: the next append must not land after a torn line.
      if (!clean || this.#shouldCompact()) await this.#compact();
    } catch (error) {
      await this.#handle.close().catch(() => {});
      this.#handle = undefined;
      this.#values.clear();
      this.#expires.clear();
      throw error;
    }
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    this.#assertOpen();
    return this.#read(key) as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    this.#assertOpen();
    return keys.map((key) => this.#read(key) as StoredData<Value | undefined>);
  }

  async has(key: string): Promise<boolean> {
    this.#assertOpen();
    return this.#read(key) !== undefined;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    this.#assertOpen();
    return keys.map((key) => this.#read(key) !== undefined);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.#assertOpen();
    await this.#append(this.#setLine(key, value, ttl));
    return true;
  }

  async delete(key: string): Promise<boolean> {
    this.#assertOpen();
    const existed = this.#read(key) !== undefined;
    if (!this.#values.has(key)) return false;
    await this.#append(this.#deleteLine(key));
    return existed;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    this.#assertOpen();
    const lines: string[] = [];
    let all = true;
    for (const key of keys) {
      if (this.#read(key) === undefined) all = false;
      if (this.#values.has(key)) lines.push(this.#deleteLine(key));
    }
    if (lines.length > 0) await this.#append(lines.join(''), lines.length);
    return all;
  }

  /** Removes the keys of our namespace (all keys without one); compaction then shrinks the log. */
  async clear(): Promise<void> {
    this.#assertOpen();
    const prefix = this.namespace === undefined ? undefined : `${this.namespace}:`;
    const keys = [...this.#values.keys()].filter((key) => prefix === undefined || key.startsWith(prefix));
    if (keys.length > 0) await this.#append(keys.map((key) => this.#deleteLine(key)).join(''), keys.length);
  }

  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    this.#assertOpen();
    const prefix = namespace === undefined ? undefined : `${namespace}:`;
    for (const key of [...this.#values.keys()]) {
      if (prefix !== undefined && !key.startsWith(prefix)) continue;
      const value = this.#read(key);
      if (value !== undefined) yield [key, value as Awaited<Value>];
    }
  }

  /** keyv's name for close(). */
  disconnect(): Promise<void> {
    return this.close();
  }

  /** Waits for pending appends, fsyncs and closes. Safe to call twice or before open(). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#opening?.catch(() => {});
    while (this.#flushing !== undefined) await this.#flushing;
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    this.#values.clear();
    this.#expires.clear();
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  #read(key: string): unknown {
    const value = this.#values.get(key);
    if (value === undefined) return undefined;
    const expires = this.#expires.get(key);
    // Expired entries stay until the next compaction drops them; keyv deletes on read too.
    return expires !== undefined && expires <= this.#now() ? undefined : value;
  }

  #setLine(key: string, value: unknown, ttl: number | undefined): string {
    // JSON has no undefined: a set to undefined is a delete, or the line would not replay.
    if (value === undefined) return this.#deleteLine(key);
    this.#values.set(key, value);
    if (typeof ttl === 'number' && ttl > 0) {
      const expires = this.#now() + ttl;
      this.#expires.set(key, expires);
      return setLine(key, value, expires);
    }
    this.#expires.delete(key);
    return setLine(key, value, undefined);
  }

  #deleteLine(key: string): string {
    this.#values.delete(key);
    this.#expires.delete(key);
    return deleteLine(key);
  }

  #assertOpen(): void {
    if (this.#handle === undefined || this.#closing !== undefined) {
      throw new StorageError(`the metadata log ${this.#file} is not open`);
    }
  }

  /** Queues text (whole lines) and resolves once it is in the file. */
  #append(text: string, lines = 1): Promise<void> {
    this.#pending.push(text);
    this.#logLines += lines;
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#flushing ??= this.#flushLoop();
    return done;
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#waiters.length > 0) {
        const text = this.#pending.join('');
        const waiters = this.#waiters;
        this.#pending = [];
        this.#waiters = [];
        try {
          await writeText(this.#requireHandle(), text);
          for (const waiter of waiters) waiter.resolve();
        } catch (cause) {
          const error = new StorageError(`appending to the metadata log ${this.#file} failed`, { cause });
          for (const waiter of waiters) waiter.reject(error);
        }
        if (this.#shouldCompact()) await this.#compactReportingErrors();
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /** A failed compaction loses nothing (the old log stays); it is reported, not thrown at a writer. */
  async #compactReportingErrors(): Promise<void> {
    try {
      await this.#compact();
    } catch (cause) {
      const error = new StorageError(`compacting the metadata log ${this.#file} failed`, { cause });
      // keyv listens for 'error'; without a listener EventEmitter would throw here.
      if (this.listenerCount('error') > 0) this.emit('error', error);
    }
  }

  #shouldCompact(): boolean {
    return this.#logLines > this.#compactMinLines && this.#logLines > this.#compactRatio * this.#values.size;
  }

  /**
   * Rewrites the live entries to a temp file, fsyncs it and renames it over the log, so a
   * crash at any point leaves either the old log or the new one. Runs only inside open()
   * or the flush loop, so no append interleaves with it.
   */
  async #compact(): Promise<void> {
    const lines = await writeSnapshot(this.#tmpFile(), { values: this.#values, expires: this.#expires }, this.#now());
    await rename(this.#tmpFile(), this.#file);
    const old = this.#handle;
    this.#handle = await open(this.#file, 'a');
    this.#logLines = lines;
    await old?.close();
    await syncDir(this.#dir);
  }

  #requireHandle(): FileHandle {
    if (this.#handle === undefined) throw new StorageError('the metadata log is closed');
    return this.#handle;
  }

  #tmpFile(): string {
    return `${this.#file}.compact`;
  }
}
