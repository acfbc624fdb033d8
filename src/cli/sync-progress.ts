import type { NoteLevel, SyncProgress } from '../sync/index.js';
import { formatBytes, formatDuration, formatTime } from './format.js';

interface Bar {
  readonly image: string;
  readonly blobs: number;
  done: number;
  state: 'running' | 'ok' | 'failed';
}

const WIDTH = 24;
const SHOWN = 8;
/** The rate is over the last few seconds, so a stall shows as a falling rate, not an old average. */
const RATE_WINDOW_MS = 10_000;
/** Off a terminal: one line this often, so a long run never looks hung. */
export const PLAIN_INTERVAL_MS = 5000;

/** Colours on a terminal unless NO_COLOR is set to anything (https://no-color.org). */
export function colorWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] ?? '') === '';
}

export type Paint = (colour: 'green' | 'red' | 'yellow' | 'dim', text: string) => string;

export function painter(color: boolean): Paint {
  const codes = { green: 32, red: 31, yellow: 33, dim: 2 };
  return (colour, text) => (color ? `\x1b[${codes[colour]}m${text}\x1b[0m` : text);
}

/** Bytes per second over the last RATE_WINDOW_MS, and the time left at that rate. */
export class RateMeter {
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(private readonly now: () => number) {
    this.samples.push({ at: now(), bytes: 0 });
  }

  add(total: number): void {
    const at = this.now();
    this.samples.push({ at, bytes: total });
    // Keep one sample at or before the window's start: the rate always spans the whole window.
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= RATE_WINDOW_MS) this.samples.shift();
  }

  /** "1.2 MiB/s  ETA 45s"; empty before anything moved. */
  describe(done: number, total: number): string {
    const first = this.samples[0];
    const seconds = first === undefined ? 0 : (this.now() - first.at) / 1000;
    if (first === undefined || seconds <= 0 || done === 0) return '';
    const rate = (done - first.bytes) / seconds;
    const eta = rate > 0 && total > done ? `  ETA ${formatDuration(((total - done) / rate) * 1000)}` : '';
    return `  ${formatBytes(rate)}/s${eta}`;
  }
}

export interface TtyProgressOptions {
  readonly color?: boolean;
  readonly now?: () => number;
}

/**
 * Progress bars on a TTY: one per image (blobs made sure of) and one for bytes with rate and ETA,
 * redrawn in place with plain ANSI (cursor up, clear line) at most ten times a second. Problems
 * print as readable lines above the bars, once.
 */
export class TtyProgress implements SyncProgress {
  private readonly bars: Bar[] = [];
  private readonly notes: string[] = [];
  private readonly paint: Paint;
  private readonly meter: RateMeter;
  private bytesTotal = 0;
  private bytesDone = 0;
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Whether any problem was printed (the summary then does not print it again). */
  noted = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    options: TtyProgressOptions = {},
  ) {
    this.paint = painter(options.color ?? colorWanted(out));
    this.meter = new RateMeter(options.now ?? Date.now);
  }

  imageStarted(job: string, image: string, blobs: number, bytes: number): void {
    this.bars.push({ image: `${job === image ? '' : `${job}: `}${image}`, blobs, done: 0, state: 'running' });
    this.bytesTotal += bytes;
    this.schedule();
  }

  blobDone(_job: string, image: string, bytes: number): void {
    const bar = this.find(image);
    if (bar !== undefined) bar.done++;
    this.bytesDone += bytes;
    this.meter.add(this.bytesDone);
    this.schedule();
  }

  imageFinished(_job: string, image: string, ok: boolean): void {
    const bar = this.find(image);
    if (bar !== undefined) bar.state = ok ? 'ok' : 'failed';
    this.schedule();
  }

  note(job: string, level: NoteLevel, message: string): void {
    this.notes.push(noteLine(this.paint, job, level, message));
    if (level !== 'info') this.noted = true;
    this.schedule();
  }

  /** Draws the final state and leaves the cursor below it. */
  finish(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.bars.length > 0 || this.notes.length > 0) this.draw();
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
    const lines = shown.map((b) => `${bar(b.blobs === 0 ? 1 : b.done / b.blobs)} ${this.mark(b.state)} ${b.image}  ${b.done}/${b.blobs} blobs`);
    if (this.bars.length > 0) {
      const rate = this.meter.describe(this.bytesDone, this.bytesTotal);
      lines.push(`${bar(this.bytesTotal === 0 ? 1 : this.bytesDone / this.bytesTotal)}   ${formatBytes(this.bytesDone)} / ${formatBytes(this.bytesTotal)}${rate}`);
    }
    // Notes scroll up above the bars: printed once where the bars were, the bars drawn again below.
    const above = this.notes.splice(0);
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of [...above, ...lines]) text += `\x1b[2K${line}\n`;
    // Fewer lines than last time: clear the leftovers below.
    const left = this.drawn - above.length - lines.length;
    for (let i = 0; i < left; i++) text += '\x1b[2K\n';
    if (left > 0) text += `\x1b[${left}A`;
    this.drawn = lines.length;
    this.out.write(text);
  }

  private mark(state: Bar['state']): string {
    return state === 'ok' ? this.paint('green', 'ok') : state === 'failed' ? this.paint('red', '!!') : '..';
  }
}

/**
 * Off a terminal: every PLAIN_INTERVAL_MS one plain line on stderr (images, blobs, bytes, rate,
 * ETA), so a run in a CI log or under systemd never looks hung. A short run prints none.
 */
export class PlainProgress implements SyncProgress {
  private images = 0;
  private imagesDone = 0;
  private blobs = 0;
  private blobsDone = 0;
  private bytes = 0;
  private bytesDone = 0;
  private readonly meter: RateMeter;
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(
    private readonly out: NodeJS.WritableStream,
    options: { readonly intervalMs?: number; readonly now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.meter = new RateMeter(this.now);
    this.timer = setInterval(() => this.out.write(`${this.line()}\n`), options.intervalMs ?? PLAIN_INTERVAL_MS).unref();
  }

  imageStarted(_job: string, _image: string, blobs: number, bytes: number): void {
    this.images++;
    this.blobs += blobs;
    this.bytes += bytes;
  }

  blobDone(_job: string, _image: string, bytes: number): void {
    this.blobsDone++;
    this.bytesDone += bytes;
    this.meter.add(this.bytesDone);
  }

  imageFinished(): void {
    this.imagesDone++;
  }

  /** "2026-12-06T16:20:05Z sync: 1/3 images, 4/9 blobs, 10.0 MiB / 40.0 MiB  2.0 MiB/s  ETA 15s" */
  line(): string {
    const progress = `${this.imagesDone}/${this.images} images, ${this.blobsDone}/${this.blobs} blobs, ${formatBytes(this.bytesDone)} / ${formatBytes(this.bytes)}`;
    return `${formatTime(this.now())} sync: ${progress}${this.meter.describe(this.bytesDone, this.bytes)}`;
  }

  finish(): void {
    clearInterval(this.timer);
  }
}

/** "warning: nightly: no tag of team/app matches …", coloured by level; facts ("info") have no label. */
export function noteLine(paint: Paint, job: string, level: NoteLevel, message: string): string {
  if (level === 'info') return paint('dim', `${job}: ${message}`);
  return `${paint(level === 'error' ? 'red' : 'yellow', `${level}:`)} ${job}: ${message}`;
}

function bar(fraction: number): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * WIDTH);
  return `[${'#'.repeat(full)}${'-'.repeat(WIDTH - full)}]`;
}
