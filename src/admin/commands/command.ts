import type { CacheAdmin } from '../cache-admin.js';

/** What travels over the admin socket: `command` names the table entry, the rest is its own. */
export interface AdminRequest {
  readonly command: string;
}

/** A CLI option of one command, in commander's syntax (`--older-than <duration>`). */
export interface CliOption {
  readonly flags: string;
  readonly description: string;
}

/** Bad CLI arguments: the CLI prints `cache <name>: <message>` and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * One `regmirror cache <name>` command, whole: its CLI options, the request it sends, how the
 * socket server reads that request back, the work, and how a person sees the result. Methods, not
 * function properties, so a specific command is assignable to the table's general type.
 */
export interface AdminCommandSpec<R extends AdminRequest = AdminRequest, Result = unknown> {
  readonly name: R['command'];
  readonly description: string;
  readonly options: readonly CliOption[];
  /** CLI options (commander's camelCase keys) → the request; throws UsageError. */
  fromCli(options: Readonly<Record<string, unknown>>): R;
  /** A request body off the socket → the request; undefined when malformed (answered 400). */
  parse(body: Readonly<Record<string, unknown>>): R | undefined;
  run(admin: CacheAdmin, request: R): Promise<Result>;
  /** For people (`--json` prints the result itself). */
  format(result: Result): string;
  /** Exit 1 for this result (verify found corruption). */
  failed?(result: Result): boolean;
}
