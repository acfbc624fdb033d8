import { RobotTokenError, type CreatedRobotToken, type RobotTokenInfo, type RobotTokens } from '../../auth/index.js';
import { parseDuration } from '../../config/index.js';
import { UsageError, type AdminCommandSpec } from './command.js';
import { table, when } from './format.js';

/** `regmirror token <name>`: robot tokens, run by whoever holds the storage (it owns the token file). */

type Create = { readonly command: 'create'; readonly name: string; readonly read: readonly string[]; readonly expiresInMs?: number };

export const tokenCreate: AdminCommandSpec<Create, CreatedRobotToken, RobotTokens> = {
  name: 'create',
  description: 'create a robot token and print its secret (shown only this once)',
  options: [
    { flags: '--name <name>', description: 'the name access.rules[].tokens and the audit log know it by' },
    { flags: '--read <pattern>', description: 'only repositories matching "<upstream>/<glob>", e.g. "docker.io/team/**" (repeatable)', repeatable: true },
    { flags: '--expires <duration>', description: 'lifetime, e.g. 30d (default: until revoked)' },
  ],
  fromCli(o) {
    const name = o['name'];
    if (typeof name !== 'string') throw new UsageError('give --name NAME');
    const read = (o['read'] as string[] | undefined) ?? [];
    const expires = o['expires'] as string | undefined;
    if (expires === undefined) return { command: 'create', name, read };
    const expiresInMs = parseDuration(expires);
    if (expiresInMs === undefined || expiresInMs <= 0) throw new UsageError(`--expires: "${expires}" is not a duration such as "30d" or "12h"`);
    return { command: 'create', name, read, expiresInMs };
  },
  parse(v) {
    const { name, read, expiresInMs } = v;
    if (typeof name !== 'string' || !Array.isArray(read) || !read.every((r): r is string => typeof r === 'string')) return undefined;
    if (expiresInMs !== undefined && typeof expiresInMs !== 'number') return undefined;
    return { command: 'create', name, read, ...(expiresInMs === undefined ? {} : { expiresInMs }) };
  },
  run: (tokens, r) => refused(() => tokens.create({ name: r.name, read: r.read, expiresInMs: r.expiresInMs })),
  format: (result) => result.secret,
  note: (result) =>
    `robot token "${result.name}" created; its secret (above) is not shown again. Use it as the password with any user name, e.g. \`docker login <mirror> -u ${result.name} --password-stdin\`.`,
};

export const tokenLs: AdminCommandSpec<{ readonly command: 'ls' }, { readonly tokens: readonly RobotTokenInfo[] }, RobotTokens> = {
  name: 'ls',
  description: 'list robot tokens: name, read patterns, created, expires, last used',
  options: [],
  fromCli: () => ({ command: 'ls' }),
  parse: () => ({ command: 'ls' }),
  run: (tokens) => Promise.resolve({ tokens: tokens.list() }),
  format({ tokens }) {
    if (tokens.length === 0) return 'no robot tokens';
    const rows = [['NAME', 'READ', 'CREATED', 'EXPIRES', 'LAST USED']];
    for (const t of tokens) {
      const expires = t.expiresAt === undefined ? 'never' : `${when(t.expiresAt)}${t.expired ? ' (expired)' : ''}`;
      rows.push([t.name, t.read?.join(',') ?? '(rules)', when(t.createdAt), expires, t.lastUsedAt === undefined ? 'never' : when(t.lastUsedAt)]);
    }
    return table(rows);
  },
};

export const tokenRevoke: AdminCommandSpec<{ readonly command: 'revoke'; readonly name: string }, { readonly name: string }, RobotTokens> = {
  name: 'revoke',
  description: 'revoke a robot token: it stops working at once',
  options: [],
  argument: { syntax: '<name>', key: 'name' },
  fromCli(o) {
    const name = o['name'];
    if (typeof name !== 'string') throw new UsageError('give the NAME of the token');
    return { command: 'revoke', name };
  },
  parse: (v) => (typeof v['name'] === 'string' ? { command: 'revoke', name: v['name'] } : undefined),
  run: (tokens, r) => refused(async () => (await tokens.revoke(r.name), { name: r.name })),
  format: (result) => `revoked robot token "${result.name}"`,
};

/** A token command refused as asked (a taken name, an unknown token, a bad pattern) is the caller's mistake. */
async function refused<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof RobotTokenError) throw new UsageError(err.message);
    throw err;
  }
}
