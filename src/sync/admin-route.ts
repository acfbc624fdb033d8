import type { IncomingMessage, ServerResponse } from 'node:http';
import { text } from 'node:stream/consumers';
import { RepositoryGlobError } from '../oci/index.js';
import { selectEntries } from './entry-patterns.js';
import type { SyncService } from './service.js';
import type { NoteLevel, SyncProgress } from './types.js';

/** Where `regmirror sync` finds a running server's sync jobs on the admin socket. */
export const SYNC_ADMIN_PATH = '/v1/sync';

/** One line of the progress stream `POST /v1/sync` answers (application/x-ndjson), the last one `result`. */
export type SyncStreamEvent =
  | { readonly event: 'imageStarted'; readonly job: string; readonly image: string; readonly blobs: number; readonly bytes: number }
  | { readonly event: 'blobDone'; readonly job: string; readonly image: string; readonly bytes: number }
  | { readonly event: 'imageFinished'; readonly job: string; readonly image: string; readonly ok: boolean }
  | { readonly event: 'note'; readonly job: string; readonly level: NoteLevel; readonly message: string }
  | { readonly event: 'result'; readonly result: unknown };

export interface SyncRouteDeps {
  readonly sync: SyncService;
  /** The rows `sync --list` prints: `/api/status`'s `sync[]`. */
  readonly list: () => Promise<unknown>;
}

const MAX_BODY = 64 * 1024;

/**
 * `regmirror sync` beside a running `serve`: `GET /v1/sync` lists the entries, `POST /v1/sync`
 * (`{ only?, dryRun? }`) runs them inside the server and streams progress back, one JSON object a
 * line, so the terminal draws the same bars as a standalone run. A client that goes away detaches:
 * the run goes on in the server. Returns false for a path it does not serve.
 */
export function syncAdminRoutes(deps: SyncRouteDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    if ((req.url ?? '').split('?', 1)[0] !== SYNC_ADMIN_PATH) return false;
    if (req.method === 'GET') {
      send(res, 200, { entries: await deps.list() });
      return true;
    }
    if (req.method !== 'POST') {
      send(res, 405, { error: 'GET or POST' });
      return true;
    }
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
      send(res, 413, { error: 'sync request too large' });
      return true;
    }
    const request = parseRequest(await text(req));
    const refused = typeof request === 'string' ? request : checkOnly(deps.sync, request.only);
    if (typeof request === 'string' || refused !== undefined) {
      send(res, 422, { error: refused });
      return true;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const write = (e: SyncStreamEvent) => {
      if (!res.destroyed) res.write(`${JSON.stringify(e)}\n`);
    };
    const progress: SyncProgress = {
      imageStarted: (job, image, blobs, bytes) => write({ event: 'imageStarted', job, image, blobs, bytes }),
      blobDone: (job, image, bytes) => write({ event: 'blobDone', job, image, bytes }),
      imageFinished: (job, image, ok) => write({ event: 'imageFinished', job, image, ok }),
      note: (job, level, message) => write({ event: 'note', job, level, message }),
    };
    const result = await deps.sync.run({ ...request, progress, origin: 'cli' });
    write({ event: 'result', result });
    res.end();
    return true;
  };
}

/** The request, or why it is refused (as `--only` would be on the command line). */
function parseRequest(body: string): { only: string | undefined; dryRun: boolean } | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'not a sync request';
  }
  const { only, dryRun } = (parsed ?? {}) as { only?: unknown; dryRun?: unknown };
  if ((only !== undefined && typeof only !== 'string') || (dryRun !== undefined && typeof dryRun !== 'boolean')) return 'not a sync request';
  return { only, dryRun: dryRun === true };
}

/** `--only` checked against the server's own entries: a bad glob or no match is refused before anything runs. */
function checkOnly(sync: SyncService, only: string | undefined): string | undefined {
  try {
    if (selectEntries(sync.entries, only).length === 0) return `--only ${only ?? ''} matches no sync entry`;
  } catch (err) {
    if (err instanceof RepositoryGlobError) return `--only: ${err.message}`;
    throw err;
  }
  return undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
