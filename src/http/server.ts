import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { allowAll, AccessChallenge, AccessDenied, type Access, type AccessController, type Grant } from '../access/index.js';
import { OciError, ociErrorBody, parseRequest, resolveRoute, type Route, type RouteContext } from '../oci/index.js';
import type { RegistryReader } from '../mirror/index.js';
import { errorSummary, noopAudit, type AuditDecision, type AuditSink, type HttpObserver } from '../observability/index.js';
import { delivered } from './delivery.js';
import { answerEdges, headerTimeouts } from './edges.js';
import { toErrorAnswer } from './errors.js';
import { dispatch, NOT_FOUND_KIND, sendJson, type RequestNote } from './handlers.js';
import { opsRoute, QUIET_ROUTES, serveOps, type OpsEndpoints } from './ops-routes.js';

export interface HttpServerOptions {
  /** What the registry API serves: the mirror, or a decorator of it. */
  readonly reader: RegistryReader;
  readonly routes: RouteContext;
  readonly logger: Logger;
  /** Health, readiness, metrics and status endpoints; without it /healthz and /readyz answer 200. */
  readonly ops?: OpsEndpoints;
  readonly observer?: HttpObserver;
  /** Who may pull what; everyone everything by default. */
  readonly access?: AccessController;
  /** Told about every finished /v2 request; nothing by default. */
  readonly audit?: AuditSink;
  /** How long a client may take to send its request headers (Node's default, 60 s, unless set): then 408. */
  readonly headersTimeoutMs?: number;
}

/** The registry listener: /v2/ API plus the ops endpoints (health, readiness, metrics, status). */
export function createHttpServer(options: HttpServerOptions): Server {
  const server = createServer({ keepAliveTimeout: 30_000, ...headerTimeouts(options.headersTimeoutMs) }, (req, res) => {
    void handle(options, req, res);
  });
  answerEdges(server);
  return server;
}

/** What one request has learnt so far, for the error answer and the record step. */
interface Exchange {
  readonly requestId: string;
  readonly started: bigint;
  readonly signal: AbortSignal;
  readonly note: RequestNote;
  /** A bounded name for logs and metrics: a route kind or an ops endpoint, never a client's path. */
  routeName: string;
  /** Under /v2 (audited), or an ops endpoint or stray path (not). */
  registryApi: boolean;
  route?: Route;
  grant?: Grant;
  decision: AuditDecision;
}

/** parse → resolve target → authorize → dispatch, then record once the response is over. */
async function handle(options: HttpServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { reader, routes, ops = {}, access = allowAll } = options;
  const aborter = new AbortController();
  const ex: Exchange = { requestId: randomUUID(), started: process.hrtime.bigint(), signal: aborter.signal, note: {}, routeName: 'other', registryApi: true, decision: 'none' };
  res.setHeader('docker-distribution-api-version', 'registry/2.0');
  res.setHeader('x-request-id', ex.requestId);
  res.on('close', () => {
    if (!res.writableFinished) aborter.abort();
  });
  try {
    const parsed = parseRequest(req.method ?? 'GET', req.url ?? '/');
    if (parsed === undefined) {
      const op = opsRoute(req.url, ops);
      ex.registryApi = false;
      if (op === undefined) throw new OciError('UNSUPPORTED', 'not found', { status: 404 });
      ex.routeName = op;
      await serveOps(req, res, op, ops);
      return;
    }
    const route = (ex.route = resolveRoute(parsed, routes));
    ex.routeName = route.kind;
    ex.grant = await authorize(access, req, route, ex);
    await dispatch({ req, res, reader, signal: aborter.signal, note: ex.note }, route);
  } catch (err) {
    answerError(options.logger, req, res, ex, err);
  } finally {
    if (res.writableFinished || res.destroyed) record(options, req, res, ex);
    else res.once('close', () => record(options, req, res, ex));
  }
}

async function authorize(access: AccessController, req: IncomingMessage, route: Route, ex: Exchange): Promise<Grant> {
  try {
    const grant = await access.authorize({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, requiredAccess(route));
    ex.decision = 'allowed';
    return grant;
  } catch (err) {
    ex.decision = err instanceof AccessChallenge ? 'challenged' : err instanceof AccessDenied ? 'denied' : 'none';
    throw err;
  }
}

/** What a route needs: a pull of its repository; `/v2/` and the catalog name none. */
function requiredAccess(route: Route): Access[] {
  if (route.kind === 'base' || route.kind === 'catalog') return [];
  return [{ upstream: route.upstream, repository: route.name, action: 'pull' }];
}

function answerError(logger: Logger, req: IncomingMessage, res: ServerResponse, ex: Exchange, err: unknown): void {
  if (ex.signal.aborted) return; // the client left; nothing to answer
  if (res.headersSent) {
    // Too late for a JSON error: cut the body short so the client cannot mistake it for success.
    logger.warn({ requestId: ex.requestId, error: errorSummary(err) }, 'response failed after headers were sent');
    res.destroy();
    return;
  }
  const answer = toErrorAnswer(err, ex.route === undefined ? 'other' : NOT_FOUND_KIND[ex.route.kind]);
  if (answer.unexpected) logger.error({ requestId: ex.requestId, err }, 'unexpected error');
  for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
  sendJson(res, req, answer.status, ociErrorBody(answer.code, answer.message, answer.unexpected ? { requestId: ex.requestId } : undefined));
}

/** The access log line, the request metrics and, for /v2 requests, one audit event. */
function record({ logger, observer, audit = noopAudit }: HttpServerOptions, req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
  const { route, note, routeName } = ex;
  const seconds = Number(process.hrtime.bigint() - ex.started) / 1e9;
  const target = describe(route);
  const fields = { requestId: ex.requestId, method: req.method, route: routeName, ...target, ...delivered(res, note), source: note.source, durationMs: seconds * 1000 };
  if (QUIET_ROUTES.has(routeName)) logger.debug(fields, 'request');
  else logger.info(fields, 'request');
  observer?.request(req.method ?? 'GET', routeName, res.statusCode, seconds);
  if (route !== undefined && 'upstream' in route && note.bytes !== undefined && note.bytes > 0) {
    observer?.served(route.upstream, route.name, note.source, note.bytes);
  }
  if (!ex.registryApi) return;
  audit.record({
    requestId: ex.requestId,
    principal: ex.grant?.principal,
    action: routeName,
    upstream: target.upstream,
    repository: target.repository,
    reference: target.reference,
    decision: ex.decision,
    source: note.source,
    bytes: note.bytes,
    status: res.statusCode,
  });
}

function describe(route: Route | undefined): { upstream?: string; repository?: string; reference?: string } {
  if (route === undefined || route.kind === 'base' || route.kind === 'catalog') return {};
  const target = route.kind === 'manifest' ? (route.reference.kind === 'tag' ? route.reference.tag : route.reference.digest) : route.kind === 'tags' ? undefined : route.digest;
  return target === undefined ? { upstream: route.upstream, repository: route.name } : { upstream: route.upstream, repository: route.name, reference: target };
}
