import { open, type FileHandle } from 'node:fs/promises';

/**
 * The metadata log format: one JSON object per line, `{"k":key,"v":value}` for a set
 * (plus `"e"`: expiry in ms since epoch, when it has a ttl) and `{"k":key,"d":1}` for a delete.
 * Replaying the lines in order gives the current contents.
 */

/** The live contents: values, and expiry times for the few entries that have one. */
export interface KvEntries {
  readonly values: Map<string, unknown>;
  readonly expires: Map<string, number>;
}

export interface SkippedLine {
  /** 1-based line number in the log. */
  readonly line: number;
  /** True for an unterminated last line (an interrupted append), false for corruption. */
  readonly torn: boolean;
}

interface LogRecord {
  readonly k: string;
  readonly v?: unknown;
  readonly e?: number;
  readonly d?: 1;
}

/** Snapshot chunks of about this many characters keep compaction from building one huge string. */
const SNAPSHOT_CHUNK_CHARS = 1 << 20;

export function setLine(key: string, value: unknown, expires: number | undefined): string {
  const record: LogRecord = expires === undefined ? { k: key, v: value } : { k: key, v: value, e: expires };
  return `${JSON.stringify(record)}\n`;
}

export function deleteLine(key: string): string {
  return `${JSON.stringify({ k: key, d: 1 })}\n`;
}

/**
 * Applies the log to `entries`. One split and one JSON.parse per line: a line reader per
 * entry is far slower at 100,000 records. `clean` is false if a line was skipped or the
 * file lacks its final newline: the caller must rewrite it before appending.
 */
export function replayLog(
  text: string,
  entries: KvEntries,
  now: number,
  onSkipped?: (info: SkippedLine) => void,
): { lines: number; clean: boolean } {
  if (text.length === 0) return { lines: 0, clean: true };
  const { values, expires } = entries;
  const lines = text.split('\n');
  let clean = text.endsWith('\n');
  let count = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === undefined || line.length === 0) continue;
    const record = parseRecord(line);
    if (record === undefined) {
      clean = false;
      onSkipped?.({ line: i + 1, torn: i === lines.length - 1 });
      continue;
    }
    count++;
    if (record.d === 1 || (record.e !== undefined && record.e <= now)) {
      values.delete(record.k);
      expires.delete(record.k);
    } else {
      values.set(record.k, record.v);
      if (record.e === undefined) expires.delete(record.k);
      else expires.set(record.k, record.e);
    }
  }
  return { lines: count, clean };
}

function parseRecord(line: string): LogRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const record = parsed as Partial<LogRecord>;
  if (typeof record.k !== 'string') return undefined;
  if (record.d === 1) return record as LogRecord;
  if (!('v' in record) || (record.e !== undefined && typeof record.e !== 'number')) return undefined;
  return record as LogRecord;
}

/** Writes the live entries to a new file at `path` and fsyncs it; returns the line count. */
export async function writeSnapshot(path: string, entries: KvEntries, now: number): Promise<number> {
  const out = await open(path, 'w');
  let lines = 0;
  try {
    let parts: string[] = [];
    let chars = 0;
    for (const [key, value] of entries.values) {
      const expires = entries.expires.get(key);
      if (expires !== undefined && expires <= now) continue;
      const line = setLine(key, value, expires);
      parts.push(line);
      chars += line.length;
      lines++;
      if (chars >= SNAPSHOT_CHUNK_CHARS) {
        await writeText(out, parts.join(''));
        parts = [];
        chars = 0;
      }
    }
    if (parts.length > 0) await writeText(out, parts.join(''));
    await out.sync();
  } finally {
    await out.close();
  }
  return lines;
}

/** Writes all of `text` at the handle's position (the end, for an 'a' handle). */
export async function writeText(handle: FileHandle, text: string): Promise<void> {
  const buf = Buffer.from(text, 'utf8');
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done);
    done += bytesWritten;
  }
}
