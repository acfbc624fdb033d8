#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { loadConfigOrExit, serve } from './serve.js';
import { doctorReport, type DoctorOptions } from './doctor.js';
import { registerCacheCommands } from './cache.js';
import { registerTokenCommands } from './token.js';
import { syncCommand } from './sync.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { CliError } from './cli-error.js';
import { versionLine } from './version.js';
import { configCheck, type ConfigCheckOptions } from './config-check.js';
import { registerCompletionCommand } from './completion.js';

const program = new Command('regmirror')
  .description('A pull-through caching mirror for container registries')
  .version(versionLine())
  .showSuggestionAfterError()
  .exitOverride();

program
  .command('serve')
  .description('run the mirror')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--listen <host:port>', 'listen address (overrides "listen")')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (overrides "log.level")')
  .option('--check', 'run the doctor checks on this config and exit without serving (1 if any failed)')
  .action(serve);

program
  .command('doctor')
  .description('check the upstreams (registry? credentials?), the storage (writable?) and the pins (fit the budget?): one line each, exit 1 on any failure')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .action(async (options: DoctorOptions) => doctorReport(await loadConfigOrExit(options)));

program
  .command('config')
  .description('work with the config file')
  .command('check')
  .description('validate the config file and list every error in it (exit 0 valid, 2 invalid); contacts nothing')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .action((options: ConfigCheckOptions) => configCheck(options));

registerCacheCommands(program);
registerTokenCommands(program);
program
  .command('sync')
  .description('mirror the configured sync entries once (inside a running serve when there is one), then exit (1 if anything failed)')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--only <pattern>', 'only entries whose name or <upstream>/<repository> matches this glob')
  .option('--dry-run', 'resolve each tag upstream (HEAD) and say what would be downloaded; change nothing (exit 1 on not found)')
  .option('--list', 'list the entries: schedule, next run, running or idle, last run and who started it')
  .option('--json', 'print the result as JSON')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .option('--log-level <level>', 'log level for stderr (default warn; error on a terminal, where problems print as lines)')
  .action(syncCommand);

const collect = (value: string, previous: string[]) => [...previous, value];
program
  .command('export')
  .description('write images (from the cache, pulled through it when missing) as an OCI image layout to carry across an air gap')
  .argument('[images...]', 'upstream/repository:tag or upstream/repository@digest, e.g. docker.io/library/nginx:1.27')
  .requiredOption('--output <dir|file.tar|->', 'a layout directory, or a tar of one (a name ending in .tar; - writes the tar to stdout)')
  .option('--platform <os/arch[/variant]>', 'only these platforms of a multi-arch image (repeatable); the index travels intact', collect, [])
  .option('--from-sync', "also every image the config's sync entries select (their filters, platforms and referrers)")
  .option('--referrers', 'also the signatures, SBOMs and attestations of each named image (referrers, or cosign .sig/.att/.sbom tags)')
  .option('--since <previous>', "leave out blobs a previous export (its regmirror-export.json, directory or tar) carried")
  .option('--images <file>', 'more images, one a line')
  .option('--json', 'print the result as JSON')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .option('--log-level <level>', 'log level for stderr (default warn)')
  .action(exportCommand);

program
  .command('import')
  .description("load an OCI image layout (directory or tar) or a docker save archive into the cache, checked before anything is changed")
  .argument('<path>', 'the layout directory or tar; - reads a tar from stdin')
  .option('--pin', 'pin the imported repositories: eviction never drops them')
  .option('--json', 'print the result as JSON')
  .option('-c, --config <file>', 'config file', 'mirror.config.json')
  .option('--storage <dir>', 'cache directory (overrides "storage.path")')
  .option('--log-level <level>', 'log level for stderr (default warn)')
  .action(importCommand);

registerCompletionCommand(program);

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
