import { packageVersion } from './version.js';
import { App } from '../app.js';
import { ConfigError, loadConfigFile, type Config, type ConfigOverrides } from '../config/index.js';
import { PinBudgetError } from '../cache/index.js';
import { CliError } from './cli-error.js';
import { configErrorLine } from './config-check.js';
import { doctorReport } from './doctor.js';
import { collectWhenIdle } from './idle-gc.js';
import { releaseReadBuffers } from '../storage/index.js';
import { loadMallocTrim } from './malloc-trim.js';
import { storagePermissionMessage } from './permission.js';

export interface ServeOptions {
  readonly config: string;
  readonly listen?: string;
  readonly storage?: string;
  readonly logLevel?: string;
  /** Run `regmirror doctor`'s checks on this config and exit instead of serving. */
  readonly check?: boolean;
}

/**
 * Accept handles added to each registry listener (src/http/accept-fan.ts): 32 accepts per loop turn.
 * With 200 clients, a fifth of their requests on a new connection, it drained an accept queue of
 * 110-190 to a median of 3-7 (bench/connections.mjs); a spare handle costs one failed accept4 per
 * new connection.
 */
const EXTRA_ACCEPT_HANDLES = 31;

/** Exit code 2 for a bad config, so service managers can tell a misconfiguration from a crash. */
export async function loadConfigOrExit(options: ServeOptions): Promise<Config> {
  try {
    return await loadConfigFile(options.config, overridesOf(options));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(configErrorLine(err, options.config), 2);
    throw err;
  }
}

/** What the command line sets over the file: applied again at every reload. */
function overridesOf(options: ServeOptions): ConfigOverrides {
  return { listen: options.listen, storage: options.storage, logLevel: options.logLevel };
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfigOrExit(options);
  if (options.check === true) return doctorReport(config);
  // Before listening: once the mirror says it listens, the signal handlers below must already be set.
  const trim = await loadMallocTrim();
  const loadConfig = () => loadConfigFile(options.config, overridesOf(options));
  const app = new App(config, { version: packageVersion(), extraAcceptHandles: EXTRA_ACCEPT_HANDLES, loadConfig });
  try {
    await app.start();
  } catch (err) {
    await app.close(0);
    // The config asks for more than it allows, or names TLS files that cannot serve: a usage error, like any other bad config.
    if (err instanceof PinBudgetError || err instanceof ConfigError) throw new CliError(`config error: ${err.message}`, 2);
    const denied = storagePermissionMessage(err, config.storage.path);
    if (denied !== undefined) throw new CliError(`cannot start: ${denied}`, 1);
    const { code, address, port } = err as NodeJS.ErrnoException & { address?: string; port?: number };
    throw new CliError(`cannot start: ${code === 'EADDRINUSE' ? `${address ?? config.listen.host}:${port ?? config.listen.port} is already in use` : (err as Error).message}`, 1);
  }
  const stopCollecting = collectWhenIdle(
    () => {
      const { transfers, downloads, started } = app.inFlight();
      return { inFlight: transfers + downloads, started };
    },
    releaseReadBuffers,
    { trim },
  );
  await new Promise<void>((resolve) => {
    // logrotate's `create` mode renames the audit file and sends SIGHUP: reopen at the path. SIGHUP
    // also re-reads the config file (ExecReload in the systemd unit); a bad one is logged and ignored.
    const reopen = () => {
      app.reopenLogs();
      void app.reload(loadConfig);
    };
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', reopen);
      stopCollecting();
      // close() stops listening before its first await, so the line below is true when it is read;
      // in-flight pulls then get `shutdownGrace` to finish.
      const { transfers, downloads } = app.inFlight();
      const closed = app.close(config.shutdownGraceMs);
      app.logger.info(
        { signal, graceMs: config.shutdownGraceMs, transfers, downloads },
        `shutting down: no new connections, waiting up to ${formatDuration(config.shutdownGraceMs)} for ${plural(transfers, 'transfer')} and ${plural(downloads, 'download')} in flight`,
      );
      void closed.then(() => {
        const { cutShort } = app.inFlight();
        app.logger.info({ signal, cutShort }, cutShort === 0 ? 'stopped' : `stopped: ${plural(cutShort, 'transfer')} cut short by the shutdown grace`);
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', reopen);
  });
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
