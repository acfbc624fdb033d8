import { existsSync } from 'node:fs';
import { Command } from 'commander';
import {
  ADMIN_COMMANDS,
  CacheAdmin,
  callAdmin,
  createAdminSocketServer,
  describeStorageHolder,
  FileBlobRemover,
  pinnedInSnapshot,
  releaseStorage,
  runCommand,
  tryHoldStorage,
  UsageError,
  type AdminCommandSpec,
  type AdminRequest,
} from '../admin/index.js';
import { configuredPins } from '../app.js';
import { PinFile } from '../cache/index.js';
import type { Config } from '../config/index.js';
import { createMetadataStore, FsBlobStore } from '../storage/index.js';
import { CliError } from './cli-error.js';
import { loadConfigOrExit } from './serve.js';

interface CommonOptions {
  readonly config: string;
  readonly storage?: string;
  readonly json?: boolean;
}

/** `regmirror cache <command>`, one per ADMIN_COMMANDS entry: sent to a running server on the same storage, or run here under its lock. */
export function registerCacheCommands(program: Command): void {
  const cache = program.command('cache').description('inspect and clean the cache (safe while serve runs)');
  for (const spec of ADMIN_COMMANDS) {
    const cmd = cache
      .command(spec.name)
      .description(spec.description)
      .option('-c, --config <file>', 'config file', 'mirror.config.json')
      .option('--storage <dir>', 'cache directory (overrides "storage.path")')
      .option('--json', 'print JSON');
    for (const o of spec.options) cmd.option(o.flags, o.description);
    cmd.action((o: CommonOptions & Record<string, unknown>) => run(spec, o));
  }
}

/** Runs the command, prints the result as JSON or for people; `failed` picks exit code 1. */
async function run(spec: AdminCommandSpec, o: CommonOptions & Record<string, unknown>): Promise<void> {
  let request: AdminRequest;
  try {
    request = spec.fromCli(o);
  } catch (err) {
    if (err instanceof UsageError) throw new CliError(`cache ${spec.name}: ${err.message}`, 2);
    throw err;
  }
  const result = await execute(o, request);
  print(o.json === true ? JSON.stringify(result, null, 2) : spec.format(result));
  if (spec.failed?.(result) === true) process.exitCode = 1;
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * A server holding the storage runs the command (it owns the metadata log and knows its downloads);
 * otherwise this process takes the storage itself for the duration, so a serve started meanwhile
 * waits its turn by failing with a clear message rather than writing the log alongside.
 */
async function execute(options: CommonOptions, cmd: AdminRequest): Promise<unknown> {
  const config = await loadConfigOrExit({ config: options.config, storage: options.storage });
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

async function runHere(config: Config, cmd: AdminRequest): Promise<{ held: true; value: unknown } | { held: false }> {
  const root = config.storage.path;
  const holder = createAdminSocketServer({ kind: 'cache', pid: process.pid, command: `cache ${cmd.command}` }, undefined, () => {});
  const lock = await tryHoldStorage(root, holder);
  if (!lock.held) return { held: false };
  const store = new FsBlobStore({ root });
  const metadata = createMetadataStore(config.storage);
  try {
    await metadata.open();
    // Alone on the storage: no download is in flight, so every temp file is an orphan.
    const pins = configuredPins(config).with(await new PinFile(root).load());
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
