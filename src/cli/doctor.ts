import { configuredPins } from '../app.js';
import { PinFile } from '../cache/index.js';
import type { Config } from '../config/index.js';
import { runDoctor } from '../doctor/index.js';
import { CliError } from './cli-error.js';
import { processOutput, type Output } from './config-check.js';

export interface DoctorOptions {
  readonly config: string;
  readonly storage?: string;
}

/**
 * `regmirror doctor` and `serve --check`: one line per check, `ok`/`warn`/`FAIL` first, and exit 1
 * when any failed (a bad config already left with 2). Warnings alone still exit 0.
 */
export async function doctorReport(config: Config, output: Output = processOutput): Promise<void> {
  // An unreadable pin file is the storage check's failure to report, not a reason to stop here.
  const pins = configuredPins(config).with(await new PinFile(config.storage.path).load().catch(() => []));
  const lines = await runDoctor(config, { isPinned: (key) => pins.matchesKey(key) });
  for (const line of lines) output.out(`${line.level.padEnd(4)} ${line.what}`);
  const failed = lines.filter((l) => l.level === 'FAIL').length;
  if (failed > 0) throw new CliError(`${failed} of ${lines.length} checks failed`, 1);
}
