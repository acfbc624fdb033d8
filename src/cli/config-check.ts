import { ConfigError, ConfigErrors, formatBytes, loadConfigFile } from '../config/index.js';
import { CliError } from './cli-error.js';

export interface ConfigCheckOptions {
  readonly config: string;
}

/** Where the command writes; the process streams unless a test passes its own. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const processOutput: Output = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

/**
 * `regmirror config check`: every mistake in the file, one line each, in one pass (exit 2), or one
 * line saying what a valid file configures (exit 0). Nothing is contacted and nothing is written.
 */
export async function configCheck(options: ConfigCheckOptions, output: Output = processOutput): Promise<void> {
  try {
    const config = await loadConfigFile(options.config);
    const upstreams = [...config.upstreams.values()].map((u) => (u.offline ? `${u.name} (offline)` : u.name));
    output.out(`ok: ${options.config} is valid: upstreams ${upstreams.join(', ')}; storage ${config.storage.path} (maxSize ${formatBytes(config.storage.maxSize)})`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const all = err instanceof ConfigErrors ? err.errors : [err];
    for (const e of all) output.err(`config error: ${e.message}`);
    throw new CliError(`${options.config}: ${all.length} ${all.length === 1 ? 'error' : 'errors'}`, 2);
  }
}

/** What `serve` and the other commands print for a bad config: the first mistake, and how to see the rest. */
export function configErrorLine(err: ConfigError, file: string): string {
  const more = err instanceof ConfigErrors ? err.errors.length - 1 : 0;
  return `config error: ${err.message}${more > 0 ? ` (and ${more} more: regmirror config check -c ${file} lists them all)` : ''}`;
}
