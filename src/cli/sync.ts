import { App } from '../app.js';
import { formatBytes } from '../config/index.js';
import { selectEntries, type EntryResult, type SyncRunResult } from '../sync/index.js';
import { CliError } from './cli-error.js';
import { globArgument } from './glob-argument.js';
import { loadConfigOrExit } from './serve.js';
import { TtyProgress } from './sync-progress.js';

export interface SyncOptions {
  readonly config: string;
  readonly only?: string;
  readonly dryRun?: boolean;
  readonly json?: boolean;
  readonly storage?: string;
  readonly logLevel?: string;
}

/** `regmirror sync`: every (matching) entry once, through the same cache as `serve`; exit 1 if anything failed. */
export async function syncCommand(options: SyncOptions): Promise<void> {
  const config = await loadConfigOrExit({ config: options.config, storage: options.storage, logLevel: options.logLevel ?? 'warn' });
  if (config.sync.entries.length === 0) throw new CliError(`config error: ${options.config} has no sync entries`, 2);
  if (globArgument('--only', () => selectEntries(config.sync.entries, options.only)).length === 0) throw new CliError(`--only ${options.only ?? ''} matches no sync entry`, 2);
  // stdout carries the table or the JSON; log lines go to stderr.
  const app = new App(config, { logDestination: process.stderr });
  const progress = !options.json && process.stdout.isTTY ? new TtyProgress(process.stdout) : undefined;
  let result: SyncRunResult;
  try {
    await app.open();
    result = await app.sync.run({ only: options.only, dryRun: options.dryRun ?? false, progress });
  } finally {
    progress?.finish();
    await app.close(0);
  }
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : summary(result.entries));
  if (!result.ok) {
    const failed = result.entries.filter((e) => e.result === 'failure').length;
    throw new CliError(`sync failed: ${failed} of ${result.entries.length} entries had errors`, 1);
  }
}

/** The table at the end: one row per image, then what went wrong. */
export function summary(entries: readonly EntryResult[]): string {
  const rows: string[][] = [['JOB', 'IMAGE', 'STATUS', 'PLATFORMS', 'BLOBS', 'SIZE', 'FETCHED']];
  for (const e of entries) {
    for (const i of e.images) {
      rows.push([e.job, `${i.repository}:${i.tag}`, i.status, String(i.manifests), String(i.blobs), formatBytes(i.bytes), formatBytes(i.downloaded)]);
    }
    if (e.images.length === 0) rows.push([e.job, '-', e.result === 'success' ? 'nothing to do' : 'failed', '0', '0', '0 B', '0 B']);
  }
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  let out = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
  for (const e of entries) {
    for (const p of e.pruned) out += `${e.job}: ${e.dryRun ? 'would prune' : 'pruned'} ${p}\n`;
    for (const err of e.errors) out += `${e.job}: error: ${err}\n`;
  }
  const total = entries.reduce((n, e) => n + e.bytesDownloaded, 0);
  const images = entries.reduce((n, e) => n + e.images.filter((i) => i.status === 'synced').length, 0);
  const failed = entries.filter((e) => e.result === 'failure').length;
  out += `${entries.length} entries, ${images} images synced, ${formatBytes(total)} fetched, ${failed} failed\n`;
  return out;
}
