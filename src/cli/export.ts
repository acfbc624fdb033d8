import { readFile } from 'node:fs/promises';
import { routeContext } from '../app.js';
import { formatBytes } from '../config/index.js';
import {
  openLayoutFiles,
  openLayoutWriter,
  openStreamWriter,
  parseImageRef,
  parseSummary,
  runExport,
  SUMMARY_FILE,
  syncExportItems,
  type ExportItem,
  type ExportResult,
  type ExportSummary,
} from '../transfer/index.js';
import { CliError } from './cli-error.js';
import { loadConfigOrExit } from './serve.js';
import { packageVersion } from './version.js';
import { onStorage, transferCliError, ttyProgress } from './transfer-host.js';

export interface ExportOptions {
  readonly config: string;
  readonly output: string;
  readonly platform: readonly string[];
  readonly fromSync?: boolean;
  readonly since?: string;
  readonly images?: string;
  readonly json?: boolean;
  readonly storage?: string;
  readonly logLevel?: string;
  readonly referrers?: boolean;
}

/** As sync entries spell platforms (config/sync.ts). */
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;

/** `regmirror export`: an OCI image layout (directory, tar, or a tar on stdout) of the named images; exit 1 if any failed. */
export async function exportCommand(images: readonly string[], options: ExportOptions): Promise<void> {
  try {
    await exportImages(images, options);
  } catch (err) {
    throw transferCliError('export', err);
  }
}

async function exportImages(args: readonly string[], options: ExportOptions): Promise<void> {
  const config = await loadConfigOrExit({ config: options.config, storage: options.storage, logLevel: options.logLevel ?? 'warn' });
  for (const p of options.platform) if (!PLATFORM.test(p)) throw new CliError(`export: --platform ${JSON.stringify(p)} is not OS/ARCH[/VARIANT] (e.g. linux/arm64/v8)`, 2);
  const names = [...args, ...(options.images === undefined ? [] : await imagesFile(options.images))];
  if (names.length === 0 && options.fromSync !== true) throw new CliError('export: name at least one IMAGE, --images FILE or --from-sync', 2);
  if (options.fromSync === true && config.sync.entries.length === 0) throw new CliError(`export: --from-sync, but ${options.config} has no sync entries`, 2);
  const context = routeContext(config);
  const named: ExportItem[] = names.map((n) => ({ ref: parseImageRef(n, context), platforms: options.platform, referrers: options.referrers === true }));
  const since = options.since === undefined ? undefined : await readSince(options.since);
  const toStdout = options.output === '-';
  if (toStdout && process.stdout.isTTY === true) throw new CliError('export: --output - writes a tar to stdout, which is a terminal: pipe or redirect it', 2);
  const writer = toStdout ? openStreamWriter(process.stdout) : await openLayoutWriter(options.output);
  // With the tar on stdout, bars and the summary go to stderr.
  const bars = ttyProgress(options.json, toStdout ? process.stderr : process.stdout);
  let result: ExportResult;
  try {
    result = await onStorage(config, 'export', async (side) => {
      const items = options.fromSync === true ? [...named, ...(await syncExportItems(config.sync.entries, side.source))] : named;
      return runExport({ items, platforms: options.platform, since, version: packageVersion() }, side.source, writer, bars.progress);
    });
  } catch (err) {
    await writer.abandon();
    throw err;
  } finally {
    bars.finish();
  }
  const where = toStdout ? 'stdout' : options.output;
  (toStdout ? process.stderr : process.stdout).write(options.json === true ? `${JSON.stringify(result, null, 2)}\n` : exportSummaryText(result, where));
  if (result.errors.length > 0) {
    if (toStdout) throw new CliError(`export incomplete: ${result.errors.length} image(s) failed, so the tar on stdout ends without index.json and its end marker: an import refuses it`, 1);
    throw new CliError(`export incomplete: ${result.errors.length} image(s) failed, so ${options.output} has no index.json yet; run it again to continue`, 1);
  }
}

/** `--images FILE`: one reference a line; blank lines and `#` comments skipped. */
async function imagesFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`export: --images ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 2);
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

/** `--since`: the previous export's regmirror-export.json, or the layout (directory or tar) holding it. */
async function readSince(where: string): Promise<ExportSummary> {
  let bytes: Buffer | undefined;
  if (where.endsWith('.json')) bytes = await readFile(where).catch(() => undefined);
  else {
    const files = await openLayoutFiles(where);
    bytes = await files.read(SUMMARY_FILE, 64 * 1024 * 1024);
  }
  if (bytes === undefined) throw new CliError(`export: --since ${where}: no ${SUMMARY_FILE} there`, 2);
  return parseSummary(bytes, `--since ${where}`);
}

export function exportSummaryText(result: ExportResult, output: string): string {
  const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SIZE']];
  for (const i of result.summary.images) rows.push([i.reference, i.digest.slice(0, 19), i.platforms.join(',') || '-', formatBytes(i.size)]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  let out = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
  for (const e of result.errors) out += `error: ${e}\n`;
  const { written, reused, leftOut } = result;
  out += `${result.summary.images.length} images to ${output}: ${written.blobs} blobs written (${formatBytes(written.bytes)})`;
  if (reused.blobs > 0) out += `, ${reused.blobs} already there (${formatBytes(reused.bytes)})`;
  if (result.summary.since !== null) out += `, ${leftOut.blobs} left out as the other side has them since ${result.summary.since.createdAt} (${formatBytes(leftOut.bytes)})`;
  return `${out}\n`;
}
