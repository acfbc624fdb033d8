import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { callAdmin, createAdminSocketServer, describeStorageHolder, releaseStorage, tryHoldStorage, UsageError, type AdminCommandSpec, type AdminRequest, type CommandTable } from '../admin/index.js';
import { ConfigError, loadConfigFile, type Config } from '../config/index.js';
import { CliError } from './cli-error.js';
import { heldByAnotherUserMessage, storagePermissionMessage } from './permission.js';

interface CommonOptions {
  readonly config: string;
  readonly storage?: string;
  readonly json?: boolean;
}

/**
 * `regmirror cache …` or `regmirror token …`: commands that work on a storage directory. A server
 * holding the storage runs them (it owns the metadata log, the token file, and knows its downloads);
 * otherwise the CLI takes the storage itself for the duration, so a serve started meanwhile fails
 * with a clear message rather than writing alongside.
 */
export interface AdminGroup<Target> {
  readonly name: 'cache' | 'token';
  readonly description: string;
  readonly table: CommandTable<Target>;
  /** Where the admin socket takes this group's commands. */
  readonly socketPath: '/v1/command' | '/v1/token';
  /**
   * What a command runs on when this process holds the storage `root`; closed after the command.
   * `config` is undefined when `--storage` was given without a config file (none at the default
   * path): a command that needs one throws UsageError.
   */
  open(root: string, config: Config | undefined, command: string): Promise<{ readonly target: Target; close(): Promise<void> }>;
}

/**
 * The admin commands never call an upstream, so a `passwordEnv` left unset (an operator's shell, a
 * `kubectl exec` without the pod's secrets) must not stop them: every variable reads as set.
 */
const SECRETS_UNUSED: NodeJS.ProcessEnv = new Proxy(process.env, {
  // Except the proxy variables: one that reads as set would name a proxy host that does not exist.
  get: (env, key) => (typeof key === 'string' ? env[key] || (/_proxy$/i.test(key) ? undefined : 'unused-by-admin-commands') : undefined),
});

export function registerAdminGroup<Target>(program: Command, group: AdminGroup<Target>): void {
  const parent = program.command(group.name).description(group.description);
  for (const spec of group.table.specs) {
    const cmd = parent
      .command(spec.name)
      .description(spec.description)
      .option('-c, --config <file>', 'config file', 'mirror.config.json')
      .option('--storage <dir>', 'cache directory (overrides "storage.path")')
      .option('--json', 'print JSON');
    for (const o of spec.options) {
      if (o.repeatable === true) cmd.option(o.flags, o.description, (value: string, list: string[]) => [...list, value], []);
      else cmd.option(o.flags, o.description);
    }
    const argument = spec.argument;
    // --storage alone, with no file at the default --config path: the storage is all there is.
    const configGiven = () => cmd.getOptionValueSource('config') !== 'default';
    if (argument === undefined) cmd.action((o: CommonOptions & Record<string, unknown>) => run(group, spec, o, configGiven()));
    else {
      cmd
        .argument(argument.syntax)
        .action((value: string | undefined, o: CommonOptions & Record<string, unknown>) => run(group, spec, { ...o, [argument.key]: value }, configGiven()));
    }
  }
}

/** Runs the command, prints the result as JSON or for people; `failed` picks exit code 1. */
async function run<Target>(
  group: AdminGroup<Target>,
  spec: AdminCommandSpec<AdminRequest, unknown, Target>,
  o: CommonOptions & Record<string, unknown>,
  configGiven: boolean,
): Promise<void> {
  const label = `${group.name} ${spec.name}`;
  let request: AdminRequest;
  try {
    request = spec.fromCli(o);
  } catch (err) {
    if (err instanceof UsageError) throw new CliError(`${label}: ${err.message}`, 2);
    throw err;
  }
  const result = await execute(group, label, o, configGiven, request);
  if (o.json === true) print(process.stdout, JSON.stringify(result, null, 2));
  else {
    print(process.stdout, spec.format(result));
    const note = spec.note?.(result);
    if (note !== undefined) print(process.stderr, note);
  }
  if (spec.failed?.(result) === true) process.exitCode = 1;
}

function print(stream: NodeJS.WriteStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

async function execute<Target>(group: AdminGroup<Target>, label: string, options: CommonOptions, configGiven: boolean, cmd: AdminRequest): Promise<unknown> {
  const withoutConfig = options.storage !== undefined && !configGiven && !existsSync(options.config);
  const config = withoutConfig ? undefined : await loadConfig(options);
  const root = config?.storage.path ?? path.resolve(options.storage ?? '.');
  // A mistyped --storage must not quietly create (and report on, or keep tokens in) an empty directory.
  if (!existsSync(root)) throw new CliError(`${label}: storage ${root} does not exist`, 1);
  for (let attempt = 0; attempt < 3; attempt++) {
    const reply = await callAdmin(root, 'POST', group.socketPath, cmd).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') return undefined; // nobody holds it
      throw new CliError(`${label}: ${heldByAnotherUserMessage(err, root) ?? `the admin socket of ${root}: ${err.message}`}`, 1);
    });
    if (reply !== undefined) {
      const error = (reply.body as { error?: unknown }).error;
      if (reply.status !== 200) throw new CliError(`${label}: ${typeof error === 'string' ? error : `admin socket answered ${reply.status}`}`, reply.status === 422 ? 2 : 1);
      return reply.body;
    }
    // Taken meanwhile by a serve or another command: ask again.
    const result = await runHere(group, label, root, config, cmd);
    if (result.held) return result.value;
  }
  throw new CliError(`${label}: storage ${root} is in use by ${await describeStorageHolder(root)}`, 1);
}

async function runHere<Target>(
  group: AdminGroup<Target>,
  label: string,
  root: string,
  config: Config | undefined,
  cmd: AdminRequest,
): Promise<{ held: true; value: unknown } | { held: false }> {
  const holder = createAdminSocketServer({ kind: group.name, pid: process.pid, command: label }, undefined, () => {});
  const lock = await tryHoldStorage(root, holder).catch((err: unknown) => {
    const denied = storagePermissionMessage(err, root);
    throw denied === undefined ? err : new CliError(`${label}: ${denied}`, 1);
  });
  if (!lock.held) return { held: false };
  try {
    const opened = await group.open(root, config, cmd.command);
    try {
      return { held: true, value: await group.table.run(opened.target, cmd) };
    } finally {
      await opened.close().catch(() => {});
    }
  } catch (err) {
    throw new CliError(`${label}: ${err instanceof Error ? err.message : String(err)}`, err instanceof UsageError ? 2 : 1);
  } finally {
    await releaseStorage(holder);
  }
}

async function loadConfig(options: CommonOptions): Promise<Config> {
  try {
    return await loadConfigFile(options.config, { storage: options.storage }, SECRETS_UNUSED);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`config error: ${err.message}`, 2);
    throw err;
  }
}
