import type { AuditConfig } from '../config/index.js';
import type { AuditEvent, AuditSink } from './audit.js';
import { auditLine } from './audit-line.js';
import { AuditFile } from './audit-file.js';
import { TrustedProxies } from './client-address.js';
import { errorSummary } from './error-summary.js';
import type { Logger } from './logger.js';
import type { AuditObserver } from './observers.js';

/** What the queue may hold while the disk is slow or failing: about 20,000 lines. */
const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
/** After a failed write, the next attempt waits this long (the queue keeps filling up to its bound meanwhile). */
const RETRY_MS = 1000;

export interface AuditLogOptions {
  readonly config: AuditConfig;
  /** `access.trustedProxies`: whose X-Forwarded-For names the client. */
  readonly trustedProxies: readonly string[];
  /** The application log: write failures and dropped lines are reported there, once per episode. */
  readonly logger: Logger;
  /** Where lines go when `path` is "stdout": the application log's own stream, so lines never interleave. */
  readonly stdout: { write(line: string): unknown };
  readonly observer?: AuditObserver;
  readonly now?: () => number;
  readonly maxQueueBytes?: number;
}

/**
 * The audit trail as JSON lines, to a file (size-rotated) or stdout. record() only formats and queues:
 * one writer appends in batches, so a response never waits for the disk. The queue is bounded; when the
 * disk cannot keep up or fails, lines past the bound are dropped and counted, never buffered without end.
 */
export class AuditLog implements AuditSink {
  private readonly proxies: TrustedProxies;
  private readonly file: AuditFile | undefined;
  private readonly now: () => number;
  private readonly maxQueueBytes: number;
  private queue: string[] = [];
  private queuedBytes = 0;
  private pumping: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Set while writes fail: the first error of the episode, reported once. */
  private failing = false;
  private droppedInEpisode = 0;
  private closed = false;

  constructor(private readonly options: AuditLogOptions) {
    this.proxies = new TrustedProxies(options.trustedProxies);
    const { path, maxSize, maxFiles } = options.config;
    this.file = path === 'stdout' ? undefined : new AuditFile(path, maxSize, maxFiles);
    this.now = options.now ?? Date.now;
    this.maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
  }

  /** Opens (creating its directory) the file, so a path that cannot be written fails start-up, not the first pull. */
  async open(): Promise<void> {
    await this.file?.open();
  }

  record(event: AuditEvent): void {
    const line = auditLine(event, new Date(this.now()), this.proxies);
    if (line === undefined) return;
    const text = `${JSON.stringify(line)}\n`;
    if (this.file === undefined) {
      try {
        this.options.stdout.write(text);
        this.options.observer?.auditLines('written', 1);
      } catch {
        // The stream is gone (closed at shutdown): the line is lost, and counted. No warning: it
        // would go to the same broken stream.
        this.options.observer?.auditLines('dropped', 1);
      }
      return;
    }
    const bytes = Buffer.byteLength(text);
    if (this.closed || this.queuedBytes + bytes > this.maxQueueBytes) {
      this.drop(1);
      return;
    }
    this.queue.push(text);
    this.queuedBytes += bytes;
    this.kick();
  }

  /** Closes and reopens the file at its path: after an outside tool (logrotate `create`) renamed it away. */
  reopen(): void {
    if (this.closed) return;
    this.file?.requestReopen();
    this.kick();
  }

  /** Writes what is queued (one more try if writes were failing) and closes the file; later events are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.pumping;
    if (this.file !== undefined && this.queue.length > 0) await this.pump(this.file);
    if (this.queue.length > 0) {
      this.drop(this.queue.length);
      this.queue = [];
      this.queuedBytes = 0;
    }
    await this.file?.close();
  }

  private kick(): void {
    if (this.file === undefined || this.pumping !== undefined || this.retryTimer !== undefined) return;
    this.pumping = this.pump(this.file).finally(() => (this.pumping = undefined));
  }

  /** The single writer: appends queued lines in batches until the queue is empty or a write fails. */
  private async pump(file: AuditFile): Promise<void> {
    while (this.queue.length > 0 || file.reopenRequested) {
      let count: number;
      try {
        count = await file.append(this.queue);
      } catch (err) {
        this.failed(err);
        return;
      }
      const written = this.queue.splice(0, count);
      this.queuedBytes -= written.reduce((sum, l) => sum + Buffer.byteLength(l), 0);
      if (count > 0) this.options.observer?.auditLines('written', count);
      if (this.failing && count > 0) {
        this.failing = false;
        this.options.logger.info({ path: this.options.config.path }, 'audit log writable again');
      }
    }
    this.endDropEpisode();
  }

  private failed(err: unknown): void {
    if (!this.failing) {
      this.failing = true;
      this.options.logger.warn(
        { path: this.options.config.path, error: errorSummary(err), queuedLines: this.queue.length },
        'audit log write failed: serving goes on; lines are queued and retried, and dropped past the queue bound',
      );
    }
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  private drop(lines: number): void {
    if (this.droppedInEpisode === 0 && !this.closed) {
      this.options.logger.warn({ path: this.options.config.path, maxQueueBytes: this.maxQueueBytes }, 'audit log cannot keep up: dropping lines until the queue drains');
    }
    this.droppedInEpisode += lines;
    this.options.observer?.auditLines('dropped', lines);
  }

  private endDropEpisode(): void {
    if (this.droppedInEpisode === 0) return;
    this.options.logger.warn({ path: this.options.config.path, dropped: this.droppedInEpisode }, 'audit log queue drained; lines were dropped');
    this.droppedInEpisode = 0;
  }
}
