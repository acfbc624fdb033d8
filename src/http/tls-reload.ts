import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { errorSummary } from '../observability/index.js';
import { checkTlsMaterial, readTlsFiles, type TlsFiles, type TlsMaterial } from './tls.js';

export interface TlsReloaderOptions {
  readonly files: TlsFiles;
  /** Installs a checked context for new connections (server.setSecureContext); open ones keep theirs. */
  readonly apply: (context: SecureContextOptions) => void;
  readonly logger: Logger;
  /** How often the files are re-read whatever the watchers report (default 30 s). */
  readonly checkIntervalMs?: number;
  /** Whether to watch the files' directories (default true); the periodic check runs either way. */
  readonly watch?: boolean;
}

/** After a reported change, wait this long: a renewal writes the certificate and the key one after the other. */
const SETTLE_MS = 100;

/**
 * Serves renewed certificates without a restart. cert-manager renews a mounted Secret by writing a
 * new timestamped directory and renaming the `..data` symlink over the old one; others overwrite the
 * files in place. Both show up as events on the files' directories, which are watched; fs.watch
 * misses changes on some mounts (network filesystems, some container runtimes), so the files are
 * also re-read on an interval. A set that cannot serve (half written, a key from another renewal)
 * is refused with one warning and the previous certificate stays.
 */
export class TlsReloader {
  private current: TlsMaterial | undefined;
  /** The files as last seen, served or refused: a refused set is reported once, not at every check. */
  private seen: string | undefined;
  private readonly watchers: FSWatcher[] = [];
  private interval: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(private readonly options: TlsReloaderOptions) {}

  /** The first load: an unusable file fails start-up with a ConfigError naming its key. */
  async start(): Promise<TlsMaterial> {
    const { files } = this.options;
    const material = checkTlsMaterial(files, await readTlsFiles(files));
    this.options.apply(material.context);
    this.current = material;
    this.seen = material.digest;
    if (this.options.watch !== false) {
      const dirs = new Set([files.cert, files.key, ...(files.clientCA === undefined ? [] : [files.clientCA])].map((f) => path.dirname(f)));
      for (const dir of dirs) this.watchDirectory(dir);
    }
    this.interval = setInterval(() => void this.check(), this.options.checkIntervalMs ?? 30_000).unref();
    return material;
  }

  /** What new connections are served. */
  get material(): TlsMaterial | undefined {
    return this.current;
  }

  /** Re-reads the files and serves them if they changed and can serve; a call during a check runs one more. */
  check(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.reload();
      } while (this.again && !this.closed);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.interval);
    clearTimeout(this.settle);
    for (const w of this.watchers.splice(0)) w.close();
  }

  private watchDirectory(dir: string): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, () => this.changed());
    } catch (err) {
      this.options.logger.debug({ dir, error: errorSummary(err) }, 'cannot watch the TLS files: relying on the periodic check');
      return;
    }
    // The directory went away (an unmounted volume): the periodic check still reads the paths.
    watcher.on('error', (err) => {
      this.options.logger.debug({ dir, error: errorSummary(err) }, 'watching the TLS files failed: relying on the periodic check');
      watcher.close();
    });
    this.watchers.push(watcher);
  }

  private changed(): void {
    if (this.closed) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => void this.check(), SETTLE_MS);
  }

  private async reload(): Promise<void> {
    const { files, logger } = this.options;
    let digest: string;
    let material: TlsMaterial | undefined;
    let problem: unknown;
    try {
      const contents = await readTlsFiles(files);
      digest = contents.digest;
      if (digest !== this.seen) material = checkTlsMaterial(files, contents);
    } catch (err) {
      problem = err;
      digest = `unusable: ${(err as Error).message}`;
    }
    if (digest === this.seen || this.closed) return;
    this.seen = digest;
    if (material !== undefined) {
      try {
        this.options.apply(material.context);
      } catch (err) {
        problem = err;
        material = undefined;
      }
    }
    if (material === undefined) {
      logger.warn({ error: errorSummary(problem), fingerprint: this.current?.fingerprint }, 'TLS files changed but cannot serve: new connections keep the previous certificate');
      return;
    }
    const previous = this.current;
    this.current = material;
    logger.info(
      { subject: material.subject, fingerprint: material.fingerprint, validTo: material.validTo, previousFingerprint: previous?.fingerprint },
      'TLS certificate reloaded: new connections get it, open ones keep theirs',
    );
  }
}
