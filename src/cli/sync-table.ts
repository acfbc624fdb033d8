import type { StatusSnapshot } from '../observability/index.js';
import type { EntryResult, ImageResult } from '../sync/index.js';
import { formatBytes, formatTime } from './format.js';
import { noteLine, painter, type Paint } from './sync-progress.js';

/** One row of `sync --list`: what `/api/status` says of an entry. */
export type EntryRow = StatusSnapshot['sync'][number];

/**
 * The table at the end: one row per image, then what was pruned and what went wrong, unless those
 * were already printed as they happened (`noted`, on a terminal), then one summary line.
 */
export function summary(entries: readonly EntryResult[], options: { color?: boolean; noted?: boolean } = {}): string {
  const paint = painter(options.color ?? false);
  const dryRun = entries.some((e) => e.dryRun);
  const header = ['JOB', 'IMAGE', 'STATUS', 'PLATFORMS', 'BLOBS', 'SIZE', ...(dryRun ? [] : ['FETCHED'])];
  const rows: { cells: string[]; colour: Parameters<Paint>[0] | undefined }[] = [];
  for (const e of entries) {
    for (const i of e.images) {
      const [status, colour] = imageStatus(i);
      rows.push({ cells: [e.job, `${i.repository}:${i.tag}`, status, String(i.manifests), String(i.blobs), formatBytes(i.bytes), ...(dryRun ? [] : [formatBytes(i.downloaded)])], colour });
    }
    if (e.images.length === 0) {
      const [status, colour]: [string, Parameters<Paint>[0]] = e.result === 'failure' ? ['failed', 'red'] : e.warnings.length > 0 ? ['no matching tag', 'yellow'] : ['nothing to do', 'green'];
      rows.push({ cells: [e.job, '-', status, '0', '0', '0 B', ...(dryRun ? [] : ['0 B'])], colour });
    }
  }
  const all = [header, ...rows.map((r) => r.cells)];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[], colour?: Parameters<Paint>[0]) =>
    cells
      .map((cell, c) => {
        const padded = cell.padEnd(widths[c] ?? 0);
        // Colour after padding: escape codes have no width on screen.
        return c === 2 && colour !== undefined ? paint(colour, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  let out = [line(header), ...rows.map((r) => line(r.cells, r.colour))].join('\n') + '\n';
  for (const e of entries) {
    for (const p of e.pruned) out += `${e.job}: ${e.dryRun ? 'would prune' : 'pruned'} ${p}\n`;
    if (options.noted === true) continue;
    for (const w of e.warnings) out += `${noteLine(paint, e.job, 'warning', w)}\n`;
    for (const err of e.errors) out += `${noteLine(paint, e.job, 'error', err)}\n`;
  }
  return out + totals(entries);
}

function imageStatus(i: ImageResult): [string, Parameters<Paint>[0]] {
  switch (i.status) {
    case 'synced':
      return ['synced', 'green'];
    case 'up-to-date':
      return ['up to date', 'green'];
    case 'planned':
      return [`would download ${formatBytes(i.wouldDownload?.bytes ?? 0)}`, 'yellow'];
    case 'not-found':
      return ['not found', 'red'];
    default:
      return ['failed', 'red'];
  }
}

function totals(entries: readonly EntryResult[]): string {
  const failed = entries.filter((e) => e.result === 'failure').length;
  const warnings = entries.reduce((n, e) => n + e.warnings.length, 0);
  const warned = warnings === 0 ? '' : `, ${warnings} warning${warnings === 1 ? '' : 's'}`;
  const images = entries.flatMap((e) => e.images);
  if (entries.some((e) => e.dryRun)) {
    const count = (s: ImageResult['status']) => images.filter((i) => i.status === s).length;
    const download = images.reduce((n, i) => n + (i.wouldDownload?.bytes ?? 0), 0);
    return `${entries.length} entries, ${images.length} images: ${count('up-to-date')} up to date, ${count('planned')} would download ${formatBytes(download)}, ${count('not-found')} not found; ${failed} failed${warned}\n`;
  }
  const total = entries.reduce((n, e) => n + e.bytesDownloaded, 0);
  const synced = images.filter((i) => i.status === 'synced').length;
  return `${entries.length} entries, ${synced} images synced, ${formatBytes(total)} fetched, ${failed} failed${warned}\n`;
}

/** `sync --list`: one row per configured entry. Times are ISO (UTC); "-" where nothing is known. */
export function entryTable(rows: readonly EntryRow[], color = false): string {
  const paint = painter(color);
  const header = ['ENTRY', 'SCHEDULE', 'NEXT RUN', 'STATE', 'LAST RUN', 'BY', 'RESULT'];
  const time = (iso: string | null) => (iso === null ? '-' : formatTime(Date.parse(iso)));
  const cells = rows.map((r) => [
    r.job,
    r.schedule ?? '-',
    time(r.nextRunAt),
    r.running ? `running${r.runningOrigin === null ? '' : ` (${r.runningOrigin})`}` : 'idle',
    time(r.lastRun?.finishedAt ?? r.lastRunAt),
    r.lastOrigin ?? '-',
    r.lastResult === null ? '-' : r.lastResult === 'failure' && r.lastError !== null ? `failure: ${r.lastError}` : r.lastResult,
  ]);
  const all = [header, ...cells];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const colourOf = (r: EntryRow) => (r.lastResult === 'failure' ? 'red' : r.lastResult === 'success' ? 'green' : undefined);
  return (
    all
      .map((row, i) => {
        const r = i === 0 ? undefined : rows[i - 1];
        const colour = r === undefined ? undefined : colourOf(r);
        return row
          .map((cell, c) => (c === 6 && colour !== undefined ? paint(colour, cell) : cell.padEnd(c === 6 ? 0 : (widths[c] ?? 0))))
          .join('  ')
          .trimEnd();
      })
      .join('\n') + '\n'
  );
}
