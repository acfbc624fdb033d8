import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessController } from '../access/index.js';
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
}

export type OpsRoute = 'healthz' | 'readyz' | 'metrics' | 'status' | 'images' | 'ui';

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
    case '/':
    case '/ui':
    case '/ui/':
      return ops.status ? 'ui' : undefined;
    default:
      return undefined;
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
};

/** Throws AccessChallenge or AccessDenied when the route is not open to this request. */
export async function authorizeOps(access: AccessController, req: IncomingMessage, route: OpsRoute): Promise<void> {
  const endpoint = OPS_ACCESS[route];
  if (endpoint !== undefined) await access.authorizeOps(accessRequest(req), endpoint);
}

export async function serveOps(req: IncomingMessage, res: ServerResponse, route: OpsRoute, ops: OpsEndpoints): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, req, 405, 'application/json', '{"status":"method not allowed"}', { allow: 'GET, HEAD' });
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
    default: {
      const unhandled: never = route;
      throw new Error(`unhandled ops route ${String(unhandled)}`);
    }
  }
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, text: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(text);
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length, 'cache-control': 'no-store', ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
}
