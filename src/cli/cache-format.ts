import { formatBytes } from './format-bytes.js';
import type { GcResult, LsResult, PruneResult, VerifyResult } from '../admin/index.js';

/** Human output of the cache commands (`--json` prints the results themselves). */


function shortDigest(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `${alg}:${(hex ?? '').slice(0, 12)}`;
}

function when(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + 'Z';
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export function formatLs(result: LsResult): string {
  const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'LAST PULLED']];
  for (const t of result.tags) rows.push([`${t.upstream}/${t.repository}`, t.tag, shortDigest(t.digest), formatBytes(t.cachedBytes), when(t.lastPulled)]);
  const summary = `${result.tags.length} tag${result.tags.length === 1 ? '' : 's'}; ${result.blobs} blob files, ${formatBytes(result.bytes)} on disk`;
  return result.tags.length === 0 ? `no cached tags; ${summary.split('; ')[1]}` : `${table(rows)}\n${summary}`;
}

export function formatVerify(result: VerifyResult): string {
  const lines = result.corrupt.map((c) => `corrupt ${c.digest} (${formatBytes(c.size)})${c.removed ? ': deleted' : ''}`);
  const removed = result.corrupt.filter((c) => c.removed).length;
  lines.push(
    `checked ${result.checked} blobs (${formatBytes(result.bytes)}): ${result.corrupt.length === 0 ? 'all intact' : `${result.corrupt.length} corrupt${removed > 0 ? `, ${removed} deleted` : ' (run with --fix to delete them)'}`}`,
  );
  return lines.join('\n');
}

export function formatGc(result: GcResult): string {
  const verb = result.dryRun ? 'would free' : 'freed';
  const lines = result.blobs.map((b) => `${result.dryRun ? 'would delete' : 'deleted'} ${b.digest} (${formatBytes(b.size)})`);
  lines.push(
    `${verb} ${result.blobs.length} blobs (${formatBytes(result.bytes)}), ${result.metadataRecords} metadata records, ${result.tempFiles} temp files (${formatBytes(result.tempBytes)})`,
  );
  return lines.join('\n');
}

export function formatPrune(result: PruneResult): string {
  const verb = result.gc.dryRun ? 'would prune' : 'pruned';
  const lines = result.tags.map((t) => `${verb} ${t.upstream}/${t.repository}:${t.tag} (${shortDigest(t.digest)})`);
  lines.push(`${verb} ${result.tags.length} tags`);
  lines.push(formatGc(result.gc));
  return lines.join('\n');
}
