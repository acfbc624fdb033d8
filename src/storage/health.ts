import { unlink, writeFile } from 'node:fs/promises';
import { Coalescer } from '../concurrency/index.js';
import { errorCode } from '../observability/index.js';
import { newProbePath, storageLayout, type StorageLayout } from './layout.js';
import type { StorageLog } from './types.js';

/** Errors that mean "this storage cannot take writes now", not "this one file is bad". */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'ENOTDIR']);

function isDiskError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && DISK_ERRORS.has(code);
}

export interface StorageHealthOptions {
  /** The storage directory; the probe file is written where blob writes go (layout.ts). */
  readonly root: string;
  /** Called for the degraded warning (at most once per `warnIntervalMs`) and the recovery notice. */
  readonly log: StorageLog;
  /** Told when the state flips (a gauge for alerting). */
  readonly onChange?: (degraded: boolean) => void;
  readonly now?: () => number;
  readonly warnIntervalMs?: number;
  /** While degraded, a real write is tried at most this often. */
  readonly probeIntervalMs?: number;
}

export interface DegradedState {
  /** The errno code, e.g. ENOSPC. */
  readonly reason: string;
  readonly since: number;
}

/** Big enough that a filesystem with a few free blocks still fails it, small enough to be free. */
const PROBE_BYTES = 64 * 1024;

/**
 * Whether the storage takes writes. A disk error anywhere (a blob write, a metadata append, the
 * probe) turns it degraded: downloads then stream straight from upstream without caching, and a
 * real write is tried every few seconds until one succeeds. One warning a minute, not one per pull.
 */
export class StorageHealth {
  readonly #layout: StorageLayout;
  readonly #log: StorageHealthOptions['log'];
  readonly #onChange: (degraded: boolean) => void;
  readonly #now: () => number;
  readonly #warnIntervalMs: number;
  readonly #probeIntervalMs: number;
  #state: DegradedState | undefined;
  #lastWarn = Number.NEGATIVE_INFINITY;
  #lastProbe = Number.NEGATIVE_INFINITY;
  readonly #probes = new Coalescer<boolean, 'probe'>();

  constructor(options: StorageHealthOptions) {
    this.#layout = storageLayout(options.root);
    this.#log = options.log;
    this.#onChange = options.onChange ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#warnIntervalMs = options.warnIntervalMs ?? 60_000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 5_000;
  }

  get degraded(): DegradedState | undefined {
    return this.#state;
  }

  /** Records `error` if it is a disk error; returns whether it was one. */
  report(error: unknown): boolean {
    if (!isDiskError(error)) return false;
    this.#degrade(errorCode(error) ?? 'unknown');
    return true;
  }

  #degrade(reason: string): void {
    const now = this.#now();
    if (this.#state === undefined) {
      this.#state = { reason, since: now };
      this.#onChange(true);
    }
    this.#lastProbe = now;
    if (now - this.#lastWarn >= this.#warnIntervalMs) {
      this.#lastWarn = now;
      this.#log('warn', { reason, since: new Date(this.#state.since).toISOString() }, 'storage is not writable: serving straight from upstream without caching');
    }
  }

  /** True when storage is healthy; while degraded, probes with a real write at most every probeIntervalMs. */
  async usable(): Promise<boolean> {
    if (this.#state === undefined) return true;
    if (this.#now() - this.#lastProbe < this.#probeIntervalMs) return false;
    return this.probe();
  }

  /** Writes and removes a probe file; clears or sets the degraded state. Concurrent calls share one probe. */
  probe(): Promise<boolean> {
    return this.#probes.run('probe', () => this.#probe()).promise;
  }

  async #probe(): Promise<boolean> {
    this.#lastProbe = this.#now();
    const file = newProbePath(this.#layout);
    try {
      await writeFile(file, Buffer.alloc(PROBE_BYTES), { flag: 'wx' });
    } catch (error) {
      await unlink(file).catch(() => {});
      // Anything that stops a file being written here stops caching, whatever its code.
      this.#degrade(errorCode(error) ?? 'EIO');
      return false;
    }
    await unlink(file).catch(() => {});
    if (this.#state !== undefined) {
      this.#log('info', { reason: this.#state.reason, degradedForMs: this.#now() - this.#state.since }, 'storage is writable again: caching resumed');
      this.#state = undefined;
      this.#lastWarn = Number.NEGATIVE_INFINITY;
      this.#onChange(false);
    }
    return true;
  }
}
