import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

/**
 * Every place a secret could reach a log line. Upstream errors never carry credentials (the upstream
 * layer strips them), but config dumps and request headers could, so they are censored by path too.
 */
const REDACT_PATHS = [
  'password',
  '*.password',
  'config.upstreams.*.password',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  '*.headers.authorization',
  '*.headers.cookie',
  'token',
  '*.token',
];

/**
 * JSON lines for machines; when nobody passed a destination and stdout is a terminal, the same lines
 * pretty-printed for a person. pino-pretty is loaded only then, so services never pay for it.
 */
export function createLogger(level: string, destination?: DestinationStream, options: { tty?: boolean } = {}): Logger {
  return pino(
    {
      level,
      base: { service: 'regmirror' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? logDestination(options),
  );
}

/**
 * The default destination, stdout: built once by the App and shared with the audit log when that goes
 * to stdout, so one writer owns the stream and application and audit lines never interleave mid-line.
 */
export function logDestination(options: { tty?: boolean } = {}): DestinationStream {
  const tty = options.tty ?? process.stdout.isTTY === true;
  return tty ? prettyStdout() : pino.destination({ dest: 1, sync: false });
}

function prettyStdout(): DestinationStream {
  // Synchronous require (pino-pretty is CommonJS) keeps createLogger synchronous for App's constructor.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', destination: 1, sync: false });
}
