import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessController } from '../access/index.js';
import type { ReloadOutcome } from '../observability/index.js';
import { OciError } from '../oci/index.js';
import { accessRequest } from './access-request.js';
import type { Readiness } from './health.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';

/**
 * The endpoints outside /v2/ for operators. Each is optional: with a separate metrics listener, the
 * public registry port keeps only the probes and the private one serves the rest.
 */
export interface OpsEndpoints {
  /** Without one, /readyz answers like /healthz. */
  readonly readiness?: Readiness;
  readonly metrics?: () => Promise<{ contentType: string; body: string }>;
  /** The JSON behind the status page. */
  readonly status?: () => Promise<unknown>;
  /** The cached images the status page lists (served with the status, never alone). */
  readonly images?: () => Promise<unknown>;
  /** `POST /api/sync/<entry>`: starts a sync entry now, unless it is running. */
  readonly syncNow?: (entry: string) => SyncNowOutcome;
  /** `POST /api/reload`: re-reads the config file as SIGHUP does; absent where no file backs the config. */
  readonly reload?: () => Promise<ReloadOutcome>;
}

/** What starting a sync entry came to: started now, running since, or no such entry. */
export type SyncNowOutcome = { readonly outcome: 'started' | 'running'; readonly startedAt: number } | { readonly outcome: 'unknown' };

export type OpsRoute = 'healthz' | 'readyz' | 'metrics' | 'status' | 'images' | 'ui' | 'sync' | 'reload';

const SYNC_PREFIX = '/api/sync/';

/** The ops route a path names, if that endpoint is served here. Query strings are ignored. */
export function opsRoute(url: string | undefined, ops: OpsEndpoints): OpsRoute | undefined {
  const path = (url ?? '/').split('?', 1)[0];
  switch (path) {
    case '/healthz':
      return 'healthz';
    case '/readyz':
      return 'readyz';
    case '/metrics':
      return ops.metrics ? 'metrics' : undefined;
    case '/api/status':
      return ops.status ? 'status' : undefined;
    case '/api/images':
      return ops.status && ops.images ? 'images' : undefined;
    case '/api/reload':
      return ops.reload ? 'reload' : undefined;
    case '/':
    case '/ui':
    case '/ui/':
      return ops.status ? 'ui' : undefined;
    default:
      return path?.startsWith(SYNC_PREFIX) === true && ops.syncNow ? 'sync' : undefined;
  }
}

/** Probes, scrapes and the page are routine: logged at debug, not info, so they never drown pulls. */
export const QUIET_ROUTES: ReadonlySet<string> = new Set<OpsRoute>(['healthz', 'readyz', 'metrics', 'status', 'images', 'ui']);

/**
 * Who may call an ops endpoint: probes are open (kubelet and load balancers send no credentials),
 * /metrics is under `access.metrics`, the status JSON and page under `access.admin`.
 */
const OPS_ACCESS: Readonly<Record<OpsRoute, 'metrics' | 'admin' | undefined>> = {
  healthz: undefined,
  readyz: undefined,
  metrics: 'metrics',
  status: 'admin',
  images: 'admin',
  ui: 'admin',
  // Starting a download job or changing the config in force is an operator's act: never open, even where the status page is.
  sync: 'admin',
  reload: 'admin',
};

/** Throws AccessChallenge or AccessDenied when the route is not open to this request. */
export async function authorizeOps(access: AccessController, req: IncomingMessage, route: OpsRoute): Promise<void> {
  const endpoint = OPS_ACCESS[route];
  if (endpoint !== undefined) await access.authorizeOps(accessRequest(req), endpoint);
}

export async function serveOps(req: IncomingMessage, res: ServerResponse, route: OpsRoute, ops: OpsEndpoints): Promise<void> {
  const allow = route === 'sync' || route === 'reload' ? ['POST'] : ['GET', 'HEAD'];
  if (!allow.includes(req.method ?? '')) {
    send(res, req, 405, 'application/json', '{"status":"method not allowed"}', { allow: allow.join(', ') });
    return;
  }
  switch (route) {
    case 'healthz':
      send(res, req, 200, 'application/json', '{"status":"ok"}');
      return;
    case 'readyz': {
      const ready = ops.readiness ? await ops.readiness.check() : { ok: true, reasons: [] };
      // Degraded stays 200: the pod still serves every pull (straight from upstream); taking it out of
      // rotation would turn a full disk into an outage. The reasons tell the operator what is wrong.
      const body = !ready.ok ? { status: 'unavailable', reasons: ready.reasons } : ready.degraded ? { status: 'degraded', reasons: ready.degraded } : { status: 'ok' };
      send(res, req, ready.ok ? 200 : 503, 'application/json', JSON.stringify(body));
      return;
    }
    case 'metrics': {
      // opsRoute() only names routes whose endpoint exists.
      const { contentType, body } = await ops.metrics!();
      send(res, req, 200, contentType, body);
      return;
    }
    case 'status':
      send(res, req, 200, 'application/json', JSON.stringify(await ops.status!()));
      return;
    case 'images':
      send(res, req, 200, 'application/json', JSON.stringify(await ops.images!()));
      return;
    case 'ui':
      send(res, req, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML, { 'content-security-policy': STATUS_PAGE_CSP, 'x-content-type-options': 'nosniff' });
      return;
    case 'sync':
      syncNow(req, res, ops);
      return;
    case 'reload': {
      const answer = await ops.reload!();
      // A config that does not load is the file's fault, not the request's: 422, and nothing changed.
      if (!answer.ok) throw new OciError('UNSUPPORTED', `config reload refused, the running config stays: ${answer.error ?? 'unknown error'}`, { status: 422 });
      send(res, req, 200, 'application/json', JSON.stringify({ changed: answer.changed, restartNeeded: answer.restartNeeded }));
      return;
    }
    default: {
      const unhandled: never = route;
      throw new Error(`unhandled ops route ${String(unhandled)}`);
    }
  }
}

/** 202 with `{entry, startedAt}`; a name no entry has is 404, one already running 409 (OCI error bodies). */
function syncNow(req: IncomingMessage, res: ServerResponse, ops: OpsEndpoints): void {
  let entry: string;
  try {
    entry = decodeURIComponent((req.url ?? '').split('?', 1)[0]?.slice(SYNC_PREFIX.length) ?? '');
  } catch {
    throw new OciError('NAME_UNKNOWN', 'no sync entry by that name', { status: 404 });
  }
  // opsRoute() only names this route when the endpoint exists.
  const started = ops.syncNow!(entry);
  if (started.outcome === 'unknown') throw new OciError('NAME_UNKNOWN', `no sync entry named ${JSON.stringify(entry)}`, { status: 404 });
  const startedAt = new Date(started.startedAt).toISOString();
  if (started.outcome === 'running') throw new OciError('UNSUPPORTED', `sync entry ${entry} is already running (since ${startedAt})`, { status: 409 });
  send(res, req, 202, 'application/json', JSON.stringify({ entry, startedAt }));
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, text: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(text);
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length, 'cache-control': 'no-store', ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
}
