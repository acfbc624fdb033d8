#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { serve } from './serve.js';
import { registerCacheCommands } from './cache.js';
import { registerTokenCommands } from './token.js';
import { syncCommand } from './sync.js';
import { CliError } from './cli-error.js';
import { packageVersion } from './version.js';

const program = new Command('regmirror')
  .description('A pull-through caching mirror for container registries')
  .version(packageVersion())
  .showSuggestionAfterError()
  .exitOverride();

program
  .command('serve')
  .description('run the mirror')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--listen <host:port>', 'listen address (overrides "listen")')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (overrides "log.level")')
  .action(serve);

registerCacheCommands(program);
registerTokenCommands(program);
program
  .command('sync')
  .description('mirror the configured sync entries once, then exit (1 if anything failed)')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--only <pattern>', 'only entries whose name or <upstream>/<repository> matches this glob')
  .option('--dry-run', 'list what would be mirrored or pruned; download nothing')
  .option('--json', 'print the result as JSON')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .option('--log-level <level>', 'log level for stderr (default warn)')
  .action(syncCommand);

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with exit code 0; usage errors were already printed by commander.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CliError) {
    process.stderr.write(`regmirror: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`regmirror: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
