import { existsSync } from 'node:fs';
import { Command } from 'commander';
import {
  CacheAdmin,
  callAdmin,
  createAdminSocketServer,
  describeStorageHolder,
  FileBlobRemover,
  pinnedInSnapshot,
  releaseStorage,
  runCommand,
  tryHoldStorage,
  type AdminCommand,
} from '../admin/index.js';
import { configuredPins } from '../app.js';
import { parseDuration, type Config } from '../config/index.js';
import { createMetadataStore, FsBlobStore } from '../storage/index.js';
import { formatGc, formatLs, formatPrune, formatVerify } from './cache-format.js';
import { CliError } from './cli-error.js';
import { loadConfigOrExit } from './serve.js';

interface CommonOptions {
  readonly config: string;
  readonly storage?: string;
  readonly json?: boolean;
}

/** `regmirror cache ls|verify|gc|prune`: sent to a running server on the same storage, or run here under its lock. */
export function registerCacheCommands(program: Command): void {
  const cache = program.command('cache').description('inspect and clean the cache (safe while serve runs)');
  const common = (cmd: Command) =>
    cmd
      .option('-c, --config <file>', 'config file', 'mirror.config.json')
      .option('--storage <dir>', 'cache directory (overrides "storage.path")')
      .option('--json', 'print JSON');
  /** Runs `cmd`, prints the result as JSON or for people; `failed` picks exit code 1. */
  const run = async <R>(o: CommonOptions, cmd: AdminCommand, human: (r: R) => string, failed: (r: R) => boolean = () => false) => {
    const result = (await execute(o, cmd)) as R;
    print(o.json === true ? JSON.stringify(result, null, 2) : human(result));
    if (failed(result)) process.exitCode = 1;
  };

  common(cache.command('ls').description('list cached repositories, tags, digests, sizes and last pulls')).action((o: CommonOptions) =>
    run(o, { command: 'ls' }, formatLs),
  );
  common(cache.command('verify').description('re-hash every blob; exit 1 if any is corrupt'))
    .option('--fix', 'delete corrupt blobs (a later pull fetches them again)')
    .action((o: CommonOptions & { fix?: boolean }) => run(o, { command: 'verify', fix: o.fix === true }, formatVerify, (r) => r.corrupt.length > 0));
  common(cache.command('gc').description('delete blobs and manifests no cached tag references, and orphaned temp files')).action((o: CommonOptions) =>
    run(o, { command: 'gc' }, formatGc),
  );

  common(cache.command('prune').description('drop tags by age of last pull or by repository, then collect what they alone held'))
    .option('--older-than <duration>', 'tags not pulled for this long, e.g. 30d')
    .option('--repo <pattern>', 'repositories matching a glob, e.g. "library/*" or "docker.io/**"')
    .option('--dry-run', 'report what would go, change nothing')
    .action((o: CommonOptions & { olderThan?: string; repo?: string; dryRun?: boolean }) => run(o, pruneCommand(o), formatPrune));
}

function pruneCommand(o: { olderThan?: string; repo?: string; dryRun?: boolean }): AdminCommand {
  if (o.olderThan === undefined && o.repo === undefined) throw new CliError('cache prune: give --older-than DURATION and/or --repo PATTERN', 2);
  const olderThanMs = o.olderThan === undefined ? undefined : parseDuration(o.olderThan);
  if (olderThanMs === undefined && o.olderThan !== undefined) throw new CliError(`cache prune: --older-than: "${o.olderThan}" is not a duration such as "30d" or "12h"`, 2);
  if (o.repo === '') throw new CliError('cache prune: --repo: the pattern is empty', 2);
  return { command: 'prune', dryRun: o.dryRun === true, ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(o.repo !== undefined ? { repo: o.repo } : {}) };
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * A server holding the storage runs the command (it owns the metadata log and knows its downloads);
 * otherwise this process takes the storage itself for the duration, so a serve started meanwhile
 * waits its turn by failing with a clear message rather than writing the log alongside.
 */
async function execute(options: CommonOptions, cmd: AdminCommand): Promise<unknown> {
  const config = await loadConfigOrExit({ config: options.config, ...(options.storage !== undefined ? { storage: options.storage } : {}) });
  const root = config.storage.path;
  // A mistyped --storage must not quietly create (and report on) an empty cache.
  if (!existsSync(root)) throw new CliError(`cache ${cmd.command}: storage ${root} does not exist`, 1);
  for (let attempt = 0; attempt < 3; attempt++) {
    const reply = await callAdmin(root, 'POST', '/v1/command', cmd).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') return undefined; // nobody holds it
      throw new CliError(`cache ${cmd.command}: the admin socket of ${root}: ${err.message}`, 1);
    });
    if (reply !== undefined) {
      const error = (reply.body as { error?: unknown }).error;
      if (reply.status !== 200) throw new CliError(`cache ${cmd.command}: ${typeof error === 'string' ? error : `admin socket answered ${reply.status}`}`, 1);
      return reply.body;
    }
    // Taken meanwhile by a serve or another cache command: ask again.
    const result = await runHere(config, cmd);
    if (result.held) return result.value;
  }
  throw new CliError(`cache ${cmd.command}: storage ${root} is in use by ${await describeStorageHolder(root)}`, 1);
}

async function runHere(config: Config, cmd: AdminCommand): Promise<{ held: true; value: unknown } | { held: false }> {
  const root = config.storage.path;
  const holder = createAdminSocketServer({ kind: 'cache', pid: process.pid, command: `cache ${cmd.command}` }, undefined, () => {});
  const lock = await tryHoldStorage(root, holder);
  if (!lock.held) return { held: false };
  const store = new FsBlobStore({ root });
  const metadata = createMetadataStore(config.storage);
  try {
    await metadata.open();
    // Alone on the storage: no download is in flight, so every temp file is an orphan.
    const pins = configuredPins(config);
    const admin = new CacheAdmin({
      root,
      store,
      metadata,
      remover: new FileBlobRemover(store, metadata),
      pinned: pinnedInSnapshot(root, (key) => pins.matchesKey(key)),
      tempGraceMs: undefined,
    });
    return { held: true, value: await runCommand(admin, cmd) };
  } catch (err) {
    throw new CliError(`cache ${cmd.command}: ${err instanceof Error ? err.message : String(err)}`, 1);
  } finally {
    await metadata.close().catch(() => {});
    await releaseStorage(holder);
  }
}
