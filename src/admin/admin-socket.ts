import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { CacheAdmin } from './cache-admin.js';
import { parseCommand, runCommand, type AdminRequest } from './commands/index.js';
import type { Holder } from './protocol.js';
import { describeHolder } from './storage-owner.js';

const MAX_BODY = 64 * 1024;

/** More routes on the socket (export and import inside a serve); resolves false for a path it does not serve. */
export type AdminRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * The HTTP server on the storage's admin socket. With an admin (a running `serve`) it runs
 * commands, one at a time; without (a CLI holding the storage) it answers 409 busy, naming itself.
 * `routes` run beside the commands, any number at once.
 */
export function createAdminSocketServer(holder: Holder, admin: CacheAdmin | undefined, onError: (err: unknown) => void, routes?: AdminRoutes): Server {
  let running: string | undefined;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      onError(err);
      send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  // A verify of a large cache takes as long as it takes; the client waits.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url === '/v1/owner') return send(res, 200, holder);
    if (routes !== undefined && (await routes(req, res))) return;
    if (req.method !== 'POST' || req.url !== '/v1/command') return send(res, 404, { error: 'not found' });
    const body = await readBody(req);
    let cmd: AdminRequest | undefined;
    try {
      cmd = parseCommand(JSON.parse(body));
    } catch {
      cmd = undefined;
    }
    if (cmd === undefined) return send(res, 400, { error: 'not an admin command' });
    if (admin === undefined) return send(res, 409, { error: `busy: ${describeHolder(holder)} holds the storage` });
    if (running !== undefined) return send(res, 409, { error: `busy: the server is already running "cache ${running}"` });
    running = cmd.command;
    try {
      send(res, 200, await runCommand(admin, cmd));
    } finally {
      running = undefined;
    }
  }
  return server;
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
