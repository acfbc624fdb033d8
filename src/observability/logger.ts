import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyLine } from './pretty-log.js';
import { redactor } from './redact-log.js';

export type { Logger } from 'pino';

/**
 * Every place a secret could reach a log line. Upstream errors never carry credentials (the upstream
 * layer strips them), but config dumps and request headers could, so they are censored by path too,
 * in a line's own fields and in what a child logger binds alike.
 */
const censor = redactor([
  ['password'],
  ['*', 'password'],
  ['config', 'upstreams', '*', 'password'],
  ['headers', 'authorization'],
  ['headers', 'cookie'],
  ['headers', 'proxy-authorization'],
  ['*', 'headers', 'authorization'],
  ['*', 'headers', 'cookie'],
  ['token'],
  ['*', 'token'],
]);

/** The line's `err` as pino prints it (type, message, stack, its own fields), so the censor sees those fields too. */
function serializedError(obj: Record<string, unknown>): Record<string, unknown> {
  return obj['err'] instanceof Error ? { ...obj, err: pino.stdSerializers.err(obj['err']) } : obj;
}

/**
 * JSON lines for machines; when nobody passed a destination and stdout is a terminal, the same lines
 * as one readable line each for a person (pretty-log.ts).
 */
export function createLogger(level: string, destination?: DestinationStream, options: { tty?: boolean } = {}): Logger {
  const logger = pino(
    {
      level,
      base: { service: 'regmirror' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (obj) => censor(serializedError(obj)) },
      // Already serialized by formatters.log, which runs first.
      serializers: { err: (value: unknown) => value },
    },
    destination ?? logDestination(options),
  );
  // pino gives child bindings no formatter (it resets `formatters.bindings` for children), so they
  // are censored on the way in. Children inherit from their parent, so one override covers them all.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, censor(bindings), childOptions);
  } as Logger['child'];
  return logger;
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
  // Synchronous: a person at a terminal reads at terminal speed, and no line is lost at exit.
  const stdout = pino.destination({ dest: 1, sync: true });
  // https://no-color.org: any non-empty NO_COLOR turns colours off.
  return prettyDestination(stdout, (process.env['NO_COLOR'] ?? '') === '');
}

/** Each JSON line rewritten for a person on its way to `stream`. */
export function prettyDestination(stream: DestinationStream, color: boolean): DestinationStream {
  return { write: (line: string) => stream.write(prettyLine(line, { color })) };
}
