import type { CacheAdmin } from '../cache-admin.js';
import type { AdminCommandSpec, AdminRequest } from './command.js';
import { gc } from './gc.js';
import { ls } from './ls.js';
import { prune } from './prune.js';
import { verify } from './verify.js';

export { UsageError, type AdminCommandSpec, type AdminRequest, type CliOption } from './command.js';

/** Every `regmirror cache` command; the socket server and the CLI know no other list. */
export const ADMIN_COMMANDS: readonly AdminCommandSpec[] = [ls, verify, gc, prune];

const BY_NAME = new Map(ADMIN_COMMANDS.map((c) => [c.name, c]));

/** Parses a request body; undefined when it is not a command (answered 400). */
export function parseCommand(value: unknown): AdminRequest | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const name = v['command'];
  return typeof name === 'string' ? BY_NAME.get(name)?.parse(v) : undefined;
}

/** Runs one admin command; both the server and an offline CLI go through this. */
export function runCommand(admin: CacheAdmin, request: AdminRequest): Promise<unknown> {
  const spec = BY_NAME.get(request.command);
  if (spec === undefined) throw new Error(`unknown admin command ${JSON.stringify(request)}`);
  return spec.run(admin, request);
}
