/**
 * Sizes and times as every command prints them (`sync`, `cache ls`, their `--json`): binary units
 * with one decimal ("76.3 MiB"), ISO 8601 UTC to the second. Defined beside the config's units so
 * the admin commands, which run inside the server too, print them the same way.
 */
export { formatBytes, formatTime } from '../config/index.js';

/** A duration for an ETA or an age: "45s", "3m05s", "2h10m". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
