/**
 * Sizes and times as every CLI command prints them (`sync`, `cache ls`, and the times inside
 * `--json`), so one table can be read against another.
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Binary units, one decimal: "76.3 MiB"; bytes as a whole number: "593 B". */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** ISO 8601 in UTC to the second: "2026-12-06T15:49:43Z". */
export function formatTime(at: number | Date): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A duration for an ETA or an age: "45s", "3m05s", "2h10m". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
