import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { OciError, ociErrorBody, parseRoute, type Route, type RouteContext } from '../oci/index.js';
import type { Mirror } from '../mirror/index.js';
import { errorSummary, type HttpObserver } from '../observability/index.js';
import { toErrorAnswer, type Subject } from './errors.js';
import { dispatch, SUBJECT, sendJson, type RequestNote } from './handlers.js';
import { opsRoute, QUIET_ROUTES, serveOps, type OpsEndpoints } from './ops-routes.js';

export interface HttpServerOptions {
  readonly mirror: Mirror;
  readonly routes: RouteContext;
  readonly logger: Logger;
  /** Health, readiness, metrics and status endpoints; without it /healthz and /readyz answer 200. */
  readonly ops?: OpsEndpoints;
  readonly observer?: HttpObserver;
}

/** The registry listener: /v2/ API plus the ops endpoints (health, readiness, metrics, status). */
export function createHttpServer(options: HttpServerOptions): Server {
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    void handle(options, req, res);
  });
  // podman, skopeo and docker try TLS on a plain port first; answer the garbage with a clean close,
  // quietly: a log line per handshake would be a storm.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

async function handle({ mirror, routes, logger, ops = {}, observer }: HttpServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  const requestId = randomUUID();
  res.setHeader('docker-distribution-api-version', 'registry/2.0');
  res.setHeader('x-request-id', requestId);
  const aborter = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) aborter.abort();
  });
  const note: RequestNote = {};
  let route: Route | undefined;
  // A bounded name for logs and metrics: a route kind or an ops endpoint, never a client's path.
  let routeName = 'other';
  let subject: Subject = 'other';
  try {
    route = parseRoute(req.method ?? 'GET', req.url ?? '/', routes);
    if (route === undefined) {
      const op = opsRoute(req.url, ops);
      if (op === undefined) throw new OciError('UNSUPPORTED', 'not found', { status: 404 });
      routeName = op;
      await serveOps(req, res, op, ops);
      return;
    }
    routeName = route.kind;
    subject = SUBJECT[route.kind];
    await dispatch({ req, res, mirror, signal: aborter.signal, note }, route);
  } catch (err) {
    if (aborter.signal.aborted) return; // the client left; nothing to answer
    if (res.headersSent) {
      // Too late for a JSON error: cut the body short so the client cannot mistake it for success.
      logger.warn({ requestId, error: errorSummary(err) }, 'response failed after headers were sent');
      res.destroy();
      return;
    }
    const answer = toErrorAnswer(err, subject);
    if (answer.unexpected) logger.error({ requestId, err }, 'unexpected error');
    for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
    sendJson(res, req, answer.status, ociErrorBody(answer.code, answer.message, answer.unexpected ? { requestId } : undefined));
  } finally {
    const log = () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const fields = {
        requestId,
        method: req.method,
        route: routeName,
        ...describe(route),
        status: res.statusCode,
        bytes: note.bytes,
        cache: note.cache,
        durationMs: seconds * 1000,
      };
      if (QUIET_ROUTES.has(routeName)) logger.debug(fields, 'request');
      else logger.info(fields, 'request');
      if (observer === undefined) return;
      observer.request(req.method ?? 'GET', routeName, res.statusCode, seconds);
      if (route !== undefined && 'upstream' in route && note.bytes !== undefined && note.bytes > 0) {
        observer.served(route.upstream, route.name, route.kind === 'blob' ? (note.cache === 'hit' ? 'cache' : 'upstream') : undefined, note.bytes);
      }
    };
    if (res.writableFinished || res.destroyed) log();
    else res.once('close', log);
  }
}

function describe(route: Route | undefined): Record<string, string> {
  if (route === undefined || route.kind === 'base' || route.kind === 'catalog') return {};
  const target = route.kind === 'manifest' ? (route.reference.kind === 'tag' ? route.reference.tag : route.reference.digest) : route.kind === 'tags' ? undefined : route.digest;
  return target === undefined ? { upstream: route.upstream, repository: route.name } : { upstream: route.upstream, repository: route.name, reference: target };
}

