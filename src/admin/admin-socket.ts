import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { RobotTokens } from '../auth/index.js';
import type { CacheAdmin } from './cache-admin.js';
import { CACHE_COMMAND_TABLE, TOKEN_COMMAND_TABLE, UsageError, type AdminRequest, type CommandTable } from './commands/index.js';
import type { Holder } from './protocol.js';
import { describeHolder } from './storage-owner.js';

const MAX_BODY = 64 * 1024;

/** More routes on the socket (export and import inside a serve); resolves false for a path it does not serve. */
export type AdminRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * The HTTP server on the storage's admin socket. With an admin (a running `serve`) it runs cache
 * commands (`POST /v1/command`), one at a time, and robot token commands (`POST /v1/token`) on the
 * token file it owns; without (a CLI holding the storage) it answers 409 busy, naming itself. A
 * command refused as asked (UsageError) is 422, so the CLI can exit 2 as for a bad option.
 * `routes` (export and import, sync) run beside the commands, any number at once.
 */
export function createAdminSocketServer(
  holder: Holder,
  admin: CacheAdmin | undefined,
  onError: (err: unknown) => void,
  more: { readonly tokens?: RobotTokens; readonly routes?: readonly AdminRoutes[] } = {},
): Server {
  const { tokens, routes } = more;
  let running: string | undefined;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (err instanceof UsageError) return send(res, 422, { error: err.message });
      onError(err);
      send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  // A verify of a large cache takes as long as it takes; the client waits.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url === '/v1/owner') return send(res, 200, holder);
    for (const route of routes ?? []) if (await route(req, res)) return;
    if (req.method === 'POST' && req.url === '/v1/command') {
      const cmd = await readCommand(req, CACHE_COMMAND_TABLE);
      if (cmd === undefined) return send(res, 400, { error: 'not an admin command' });
      if (admin === undefined) return send(res, 409, { error: `busy: ${describeHolder(holder)} holds the storage` });
      if (running !== undefined) return send(res, 409, { error: `busy: the server is already running "cache ${running}"` });
      running = cmd.command;
      try {
        return send(res, 200, await CACHE_COMMAND_TABLE.run(admin, cmd));
      } finally {
        running = undefined;
      }
    }
    if (req.method === 'POST' && req.url === '/v1/token') {
      // Token commands are quick and the token store orders its own writes: no waiting behind a verify.
      const cmd = await readCommand(req, TOKEN_COMMAND_TABLE);
      if (cmd === undefined) return send(res, 400, { error: 'not a token command' });
      if (tokens === undefined) return send(res, 409, { error: `busy: ${describeHolder(holder)} holds the storage` });
      return send(res, 200, await TOKEN_COMMAND_TABLE.run(tokens, cmd));
    }
    return send(res, 404, { error: 'not found' });
  }
  return server;
}

async function readCommand<T>(req: IncomingMessage, table: CommandTable<T>): Promise<AdminRequest | undefined> {
  const body = await readBody(req);
  try {
    return table.parse(JSON.parse(body));
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('admin request too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
