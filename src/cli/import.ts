import { routeContext } from '../app.js';
import { formatBytes } from '../config/index.js';
import { openLayoutFiles, readImportPlan, runImport, type ImportResult } from '../transfer/index.js';
import { loadConfigOrExit } from './serve.js';
import { spoolStdin } from './stdin-spool.js';
import { onStorage, transferCliError, ttyProgress } from './transfer-host.js';

export interface ImportOptions {
  readonly config: string;
  readonly pin?: boolean;
  readonly json?: boolean;
  readonly storage?: string;
  readonly logLevel?: string;
}

/** `regmirror import PATH|-`: an OCI layout (directory or tar, `-` a tar on stdin) or a docker save archive into the cache. */
export async function importCommand(where: string, options: ImportOptions): Promise<void> {
  try {
    await importLayout(where, options);
  } catch (err) {
    throw transferCliError('import', err);
  }
}

async function importLayout(where: string, options: ImportOptions): Promise<void> {
  const config = await loadConfigOrExit({ config: options.config, storage: options.storage, logLevel: options.logLevel ?? 'warn' });
  const spool = where === '-' ? await spoolStdin(config.storage.path) : undefined;
  let result: ImportResult;
  try {
    const files = await openLayoutFiles(spool?.file ?? where, spool === undefined ? where : 'stdin');
    // Everything but blob contents is checked before the storage is touched.
    const plan = await readImportPlan(files, routeContext(config));
    const bars = ttyProgress(options.json);
    try {
      result = await onStorage(config, 'import', (side) => runImport(files, plan, side.target, { pin: options.pin === true }, bars.progress));
    } finally {
      bars.finish();
      await files.close();
    }
  } finally {
    await spool?.dispose();
  }
  process.stdout.write(options.json === true ? `${JSON.stringify(result, null, 2)}\n` : importSummaryText(result));
}

export function importSummaryText(result: ImportResult): string {
  const rows = [['IMAGE', 'DIGEST', 'COPIED']];
  for (const i of result.images) rows.push([i.reference, i.digest.slice(0, 19), `${i.blobs} blobs (${formatBytes(i.bytes)})`]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  let out = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
  out += `${result.images.length} images imported${result.kind === 'docker-save' ? ' from a docker save archive (new manifests: pull these by tag)' : ''}: `;
  out += `${result.written.blobs} blobs copied (${formatBytes(result.written.bytes)}), ${result.skipped.blobs} already cached (${formatBytes(result.skipped.bytes)})`;
  if (result.pinned.length > 0) out += `; pinned ${result.pinned.join(', ')}`;
  return `${out}\n`;
}
