import type { CacheAdmin } from '../cache-admin.js';

/** What travels over the admin socket: `command` names the table entry, the rest is its own. */
export interface AdminRequest {
  readonly command: string;
}

/** A CLI option of one command, in commander's syntax (`--older-than <duration>`). */
export interface CliOption {
  readonly flags: string;
  readonly description: string;
  /** May be given more than once; the values arrive as a list (empty when never given). */
  readonly repeatable?: boolean;
}

/**
 * Bad CLI arguments, or a request the command refuses as asked (a token name taken): the CLI prints
 * `<group> <name>: <message>` and exits 2; the socket answers 422.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * One `regmirror cache <name>` (or `token <name>`) command, whole: its CLI options, the request it
 * sends, how the socket server reads that request back, the work on its target (the cache, the robot
 * tokens), and how a person sees the result. Methods, not function properties, so a specific command
 * is assignable to the table's general type.
 */
export interface AdminCommandSpec<R extends AdminRequest = AdminRequest, Result = unknown, Target = CacheAdmin> {
  readonly name: R['command'];
  readonly description: string;
  readonly options: readonly CliOption[];
  /** A positional argument (`<name>`), handed to fromCli as the option `key`. */
  readonly argument?: { readonly syntax: string; readonly key: string };
  /** CLI options (commander's camelCase keys) → the request; throws UsageError. */
  fromCli(options: Readonly<Record<string, unknown>>): R;
  /** A request body off the socket → the request; undefined when malformed (answered 400). */
  parse(body: Readonly<Record<string, unknown>>): R | undefined;
  run(target: Target, request: R): Promise<Result>;
  /** For people (`--json` prints the result itself). */
  format(result: Result): string;
  /** A line for stderr beside the human output, so stdout stays what a script captures. */
  note?(result: Result): string | undefined;
  /** Exit 1 for this result (verify found corruption). */
  failed?(result: Result): boolean;
}
