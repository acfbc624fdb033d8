import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** One write carries at most this much: a burst becomes a few large appends, not one per line. */
const MAX_BATCH_BYTES = 256 * 1024;

/**
 * An append-only file rotated by size: when the next append would take it past `maxSize`, it becomes
 * `<path>.1` (`.1` → `.2`, …, keeping `maxFiles` rotated files) and a fresh file is opened. Appends go
 * through O_APPEND, so a `copytruncate` by logrotate is harmless (the size is re-read before rotating),
 * and requestReopen() serves logrotate's `create` mode (the file was renamed away: reopen at the path).
 * Callers serialise appends (AuditLog has one writer).
 */
export class AuditFile {
  private handle: FileHandle | undefined;
  private size = 0;
  /** After a failed append the file's end is unknown: it may hold part of a line. */
  private suspect = false;
  reopenRequested = false;

  constructor(
    readonly path: string,
    private readonly maxSize: number,
    private readonly maxFiles: number,
  ) {}

  async open(): Promise<void> {
    await this.opened();
  }

  private async opened(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    await mkdir(path.dirname(this.path), { recursive: true });
    // Who pulled what, and from where, is for the operators: not world-readable. Readable by us
    // (a+) to check the last byte after a failure.
    const handle = await open(this.path, 'a+', 0o640);
    try {
      this.size = (await handle.stat()).size;
      if (this.suspect && this.size > 0) {
        // A line cut short by the failure must not swallow the next one: end it first.
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, this.size - 1);
        if (last[0] !== 0x0a) await this.write(handle, '\n');
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.suspect = false;
    this.handle = handle;
    return handle;
  }

  requestReopen(): void {
    this.reopenRequested = true;
  }

  /**
   * Appends the first of `lines` that fit in the current file (rotating first when not even the first
   * does; a line larger than maxSize gets a file of its own), in one write of at most MAX_BATCH_BYTES.
   * Resolves with how many were written. On failure the file is closed and the next append reopens it.
   */
  async append(lines: readonly string[]): Promise<number> {
    try {
      if (this.reopenRequested) {
        this.reopenRequested = false;
        await this.closeHandle();
      }
      if (lines.length === 0) return 0;
      let handle = await this.opened();
      const first = Buffer.byteLength(lines[0] ?? '');
      if (this.size > 0 && this.size + first > this.maxSize) handle = await this.rotate(handle, first);
      const room = Math.min(Math.max(this.maxSize - this.size, first), Math.max(MAX_BATCH_BYTES, first));
      let bytes = 0;
      let count = 0;
      for (const line of lines) {
        const n = Buffer.byteLength(line);
        if (count > 0 && bytes + n > room) break;
        bytes += n;
        count++;
      }
      await this.write(handle, lines.slice(0, count).join(''));
      return count;
    } catch (err) {
      this.suspect = true;
      await this.closeHandle().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.closeHandle();
  }

  private async write(handle: FileHandle, text: string): Promise<void> {
    const buffer = Buffer.from(text);
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesWritten } = await handle.write(buffer, offset);
      offset += bytesWritten;
    }
    this.size += buffer.length;
  }

  /** The handle to append `bytes` to: this one if there is room, else a fresh file after the shift. */
  private async rotate(handle: FileHandle, bytes: number): Promise<FileHandle> {
    // Someone else may have truncated it (copytruncate): then there may be room again.
    this.size = (await handle.stat()).size;
    if (this.size === 0 || this.size + bytes <= this.maxSize) return handle;
    await this.closeHandle();
    for (let i = this.maxFiles - 1; i >= 1; i--) await renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    await renameIfPresent(this.path, `${this.path}.1`);
    return this.opened();
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
