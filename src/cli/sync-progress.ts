import { formatBytes } from '../config/index.js';
import type { SyncProgress } from '../sync/index.js';

interface Bar {
  readonly image: string;
  readonly blobs: number;
  done: number;
  state: 'running' | 'ok' | 'failed';
}

const WIDTH = 24;
const SHOWN = 8;

/**
 * Progress bars on a TTY: one per image (blobs made sure of) and one for bytes, redrawn in place
 * with plain ANSI (cursor up, clear line) at most ten times a second.
 */
export class TtyProgress implements SyncProgress {
  private readonly bars: Bar[] = [];
  private bytesTotal = 0;
  private bytesDone = 0;
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: NodeJS.WriteStream) {}

  imageStarted(job: string, image: string, blobs: number, bytes: number): void {
    this.bars.push({ image: `${job === image ? '' : `${job}: `}${image}`, blobs, done: 0, state: 'running' });
    this.bytesTotal += bytes;
    this.schedule();
  }

  blobDone(_job: string, image: string, bytes: number): void {
    const bar = this.find(image);
    if (bar !== undefined) bar.done++;
    this.bytesDone += bytes;
    this.schedule();
  }

  imageFinished(_job: string, image: string, ok: boolean): void {
    const bar = this.find(image);
    if (bar !== undefined) bar.state = ok ? 'ok' : 'failed';
    this.schedule();
  }

  /** Draws the final state and leaves the cursor below it. */
  finish(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.bars.length > 0) this.draw();
  }

  private find(image: string): Bar | undefined {
    for (let i = this.bars.length - 1; i >= 0; i--) if (this.bars[i]?.image.endsWith(image)) return this.bars[i];
    return undefined;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, 100);
  }

  private draw(): void {
    const running = this.bars.filter((b) => b.state === 'running');
    const shown = [...this.bars.filter((b) => b.state !== 'running').slice(-Math.max(0, SHOWN - running.length)), ...running.slice(0, SHOWN)];
    const lines = shown.map((b) => `${bar(b.blobs === 0 ? 1 : b.done / b.blobs)} ${mark(b.state)} ${b.image}  ${b.done}/${b.blobs} blobs`);
    lines.push(`${bar(this.bytesTotal === 0 ? 1 : this.bytesDone / this.bytesTotal)}   ${formatBytes(this.bytesDone)} / ${formatBytes(this.bytesTotal)}`);
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of lines) text += `\x1b[2K${line}\n`;
    // Fewer lines than last time: clear the leftovers below.
    for (let i = lines.length; i < this.drawn; i++) text += '\x1b[2K\n';
    if (this.drawn > lines.length) text += `\x1b[${this.drawn - lines.length}A`;
    this.drawn = lines.length;
    this.out.write(text);
  }
}

function bar(fraction: number): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * WIDTH);
  return `[${'#'.repeat(full)}${'-'.repeat(WIDTH - full)}]`;
}

function mark(state: Bar['state']): string {
  return state === 'ok' ? 'ok' : state === 'failed' ? '!!' : '..';
}

