import type { RobotTokens } from '../../auth/index.js';
import type { CacheAdmin } from '../cache-admin.js';
import type { AdminCommandSpec, AdminRequest } from './command.js';
import { gc } from './gc.js';
import { ls } from './ls.js';
import { prune } from './prune.js';
import { tokenCreate, tokenLs, tokenRevoke } from './tokens.js';
import { verify } from './verify.js';

export { UsageError, type AdminCommandSpec, type AdminRequest, type CliOption } from './command.js';

/** One group of commands (`cache`, `token`): the socket server and the CLI know no other list. */
export interface CommandTable<Target> {
  readonly specs: readonly AdminCommandSpec<AdminRequest, unknown, Target>[];
  /** Parses a request body; undefined when it is not one of these commands (answered 400). */
  parse(value: unknown): AdminRequest | undefined;
  /** Runs one command; both the server and a CLI holding the storage alone go through this. */
  run(target: Target, request: AdminRequest): Promise<unknown>;
}

function commandTable<Target>(specs: readonly AdminCommandSpec<AdminRequest, unknown, Target>[]): CommandTable<Target> {
  const byName = new Map(specs.map((c) => [c.name, c]));
  return {
    specs,
    parse(value) {
      if (typeof value !== 'object' || value === null) return undefined;
      const v = value as Record<string, unknown>;
      const name = v['command'];
      return typeof name === 'string' ? byName.get(name)?.parse(v) : undefined;
    },
    run(target, request) {
      const spec = byName.get(request.command);
      if (spec === undefined) throw new Error(`unknown admin command ${JSON.stringify(request)}`);
      return spec.run(target, request);
    },
  };
}

/** Every `regmirror cache` command. */
export const ADMIN_COMMANDS: readonly AdminCommandSpec[] = [ls, verify, gc, prune];
export const CACHE_COMMAND_TABLE = commandTable<CacheAdmin>(ADMIN_COMMANDS);

/** Every `regmirror token` command. */
export const TOKEN_COMMANDS: readonly AdminCommandSpec<AdminRequest, unknown, RobotTokens>[] = [tokenCreate, tokenLs, tokenRevoke];
export const TOKEN_COMMAND_TABLE = commandTable<RobotTokens>(TOKEN_COMMANDS);

/** Parses a cache command's request body; undefined when it is not one (answered 400). */
export function parseCommand(value: unknown): AdminRequest | undefined {
  return CACHE_COMMAND_TABLE.parse(value);
}

/** Runs one cache command. */
export function runCommand(admin: CacheAdmin, request: AdminRequest): Promise<unknown> {
  return CACHE_COMMAND_TABLE.run(admin, request);
}
