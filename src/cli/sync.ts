import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { callAdmin, describeHolder, openAdmin, type Holder } from '../admin/index.js';
import { App } from '../app.js';
import type { Config } from '../config/index.js';
import { describeSchedule, selectEntries, SYNC_ADMIN_PATH, type SyncProgress, type SyncRunResult, type SyncStreamEvent } from '../sync/index.js';
import { CliError } from './cli-error.js';
import { globArgument } from './glob-argument.js';
import { loadConfigOrExit } from './serve.js';
import { colorWanted, PlainProgress, TtyProgress } from './sync-progress.js';
import { entryTable, summary, type EntryRow } from './sync-table.js';

export interface SyncOptions {
  readonly config: string;
  readonly only?: string;
  readonly dryRun?: boolean;
  readonly json?: boolean;
  readonly list?: boolean;
  readonly storage?: string;
  readonly logLevel?: string;
}

/**
 * `regmirror sync`: every (matching) entry once; exit 1 if anything failed. Beside a running
 * `serve` it runs inside that server (over the storage's admin socket) and streams its progress
 * here; otherwise it holds the storage and runs in this process.
 */
export async function syncCommand(options: SyncOptions): Promise<void> {
  const bars = options.json !== true && process.stdout.isTTY === true;
  // On a terminal, problems print as readable lines; JSON log lines would only repeat them.
  const config = await loadConfigOrExit({ config: options.config, storage: options.storage, logLevel: options.logLevel ?? (bars ? 'error' : 'warn') });
  if (config.sync.entries.length === 0) throw new CliError(`config error: ${options.config} has no sync entries`, 2);
  if (options.list === true) return listEntries(config, options.json === true);
  if (globArgument('--only', () => selectEntries(config.sync.entries, options.only)).length === 0) throw new CliError(`--only ${options.only ?? ''} matches no sync entry`, 2);
  const color = bars && colorWanted(process.stdout);
  const tty = bars ? new TtyProgress(process.stdout, { color }) : undefined;
  const progress = tty ?? new PlainProgress(process.stderr);
  let result: SyncRunResult;
  try {
    result = await runSomewhere(config, options, progress);
  } finally {
    progress.finish();
  }
  process.stdout.write(options.json === true ? `${JSON.stringify(result, null, 2)}\n` : summary(result.entries, { color, noted: tty?.noted }));
  if (!result.ok) {
    const failed = result.entries.filter((e) => e.result === 'failure').length;
    throw new CliError(`sync failed: ${failed} of ${result.entries.length} entries had errors`, 1);
  }
}

/** Inside the serve that holds the storage, or here when nobody does. */
async function runSomewhere(config: Config, options: SyncOptions, progress: SyncProgress): Promise<SyncRunResult> {
  const holder = await storageHolder(config);
  if (holder !== undefined) {
    if (holder.kind !== 'serve' || holder.command !== 'serve') throw new CliError(`storage ${config.storage.path} is in use by ${describeHolder(holder)}`, 1);
    process.stderr.write(`regmirror: sync runs inside ${describeHolder(holder)}; Ctrl-C detaches, the run goes on there\n`);
    return runInServer(config.storage.path, { only: options.only, dryRun: options.dryRun === true }, progress);
  }
  // stdout carries the table or the JSON; log lines go to stderr.
  const app = new App(config, { logDestination: process.stderr, command: 'sync' });
  try {
    await app.open();
    return await app.sync.run({ only: options.only, dryRun: options.dryRun ?? false, progress, origin: 'cli' });
  } finally {
    await app.close(0);
  }
}

async function storageHolder(config: Config): Promise<Holder | undefined> {
  const root = config.storage.path;
  if (!existsSync(root)) return undefined;
  const owner = await callAdmin(root, 'GET', '/v1/owner').catch(() => undefined);
  return owner?.status === 200 ? (owner.body as Holder) : undefined;
}

/** POST /v1/sync on the admin socket: the server's progress, a line at a time, then its result. */
export async function runInServer(root: string, request: { only: string | undefined; dryRun: boolean }, progress: SyncProgress): Promise<SyncRunResult> {
  const reply = await openAdmin(root, 'POST', SYNC_ADMIN_PATH, Buffer.from(JSON.stringify(request)), { 'content-type': 'application/json' });
  if (reply.status !== 200) {
    const chunks: Buffer[] = [];
    for await (const chunk of reply.body) chunks.push(chunk as Buffer);
    const error = (JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { error?: unknown }).error;
    throw new CliError(typeof error === 'string' ? error : `the server answered ${reply.status}`, reply.status === 422 ? 2 : 1);
  }
  let result: SyncRunResult | undefined;
  for await (const line of createInterface({ input: reply.body, crlfDelay: Infinity })) {
    if (line === '') continue;
    const e = JSON.parse(line) as SyncStreamEvent;
    if (e.event === 'imageStarted') progress.imageStarted(e.job, e.image, e.blobs, e.bytes);
    else if (e.event === 'blobDone') progress.blobDone(e.job, e.image, e.bytes);
    else if (e.event === 'imageFinished') progress.imageFinished(e.job, e.image, e.ok);
    else if (e.event === 'note') progress.note?.(e.job, e.level, e.message);
    else result = e.result as SyncRunResult;
  }
  if (result === undefined) throw new CliError('the server ended the sync before its result (see its log)', 1);
  return result;
}

/** `sync --list`: the running server's view (schedules, next and last runs), else the config's. */
async function listEntries(config: Config, json: boolean): Promise<void> {
  const root = config.storage.path;
  const reply = existsSync(root) ? await callAdmin(root, 'GET', SYNC_ADMIN_PATH).catch(() => undefined) : undefined;
  const live = reply?.status === 200;
  const rows: EntryRow[] = live ? (reply.body as { entries: EntryRow[] }).entries : config.sync.entries.map((e) => configRow(e.name, describeSchedule(e.schedule)));
  if (json) {
    process.stdout.write(`${JSON.stringify({ server: live, entries: rows }, null, 2)}\n`);
    return;
  }
  process.stdout.write(entryTable(rows, colorWanted(process.stdout)));
  if (!live) process.stderr.write(`regmirror: no serve is running on ${root}: next and last runs are known only to a running server\n`);
}

/** An entry as the config alone describes it: never run as far as this process knows. */
export function configRow(job: string, schedule: string | null): EntryRow {
  return {
    job,
    schedule,
    nextRunAt: null,
    running: false,
    runningSince: null,
    runningOrigin: null,
    lastOrigin: null,
    lastResult: null,
    lastRunAt: null,
    lastSuccessAt: null,
    lastError: null,
    bytes: 0,
    images: 0,
    lastRun: null,
  };
}
