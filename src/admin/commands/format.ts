import { RepositoryGlobError } from '../../oci/index.js';
import { repoMatcher } from '../cache-admin.js';
import { UsageError } from './command.js';

/** Shared pieces of the cache commands' human output and arguments. */

export function shortDigest(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `${alg}:${(hex ?? '').slice(0, 12)}`;
}

export function when(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + 'Z';
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** The same grammar as pins and sync entries; a pattern outside it is a usage error, not a failed command. */
export function checkRepoPattern(option: string, pattern: string): void {
  try {
    repoMatcher(pattern);
  } catch (err) {
    if (err instanceof RepositoryGlobError) throw new UsageError(`${option}: ${err.message}`);
    throw err;
  }
}
