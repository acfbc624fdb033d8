import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { OciError, ociErrorBody, parseRoute, type Route, type RouteContext } from '../oci/index.js';
import type { Mirror } from '../mirror/index.js';
import { errorSummary } from '../observability/index.js';
import { toErrorAnswer, type Subject } from './errors.js';
import { dispatch, sendJson, SUBJECT, type RequestNote } from './handlers.js';

export interface HttpServerOptions {
  readonly mirror: Mirror;
  readonly routes: RouteContext;
  readonly logger: Logger;
}

/** The registry listener: /v2/ API plus liveness and readiness. */
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

async function handle({ mirror, routes, logger }: HttpServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
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
  let subject: Subject = 'other';
  try {
    route = parseRoute(req.method ?? 'GET', req.url ?? '/', routes);
    if (route === undefined) {
      serveOutsideV2(req, res);
      return;
    }
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
    const log = () =>
      logger.info(
        {
          requestId,
          method: req.method,
          route: route?.kind ?? 'other',
          ...describe(route),
          status: res.statusCode,
          bytes: note.bytes,
          cache: note.cache,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      );
    if (res.writableFinished || res.destroyed) log();
    else res.once('close', log);
  }
}

function describe(route: Route | undefined): Record<string, string> {
  if (route === undefined || route.kind === 'base' || route.kind === 'catalog') return {};
  const target = route.kind === 'manifest' ? (route.reference.kind === 'tag' ? route.reference.tag : route.reference.digest) : route.kind === 'tags' ? undefined : route.digest;
  return target === undefined ? { upstream: route.upstream, repository: route.name } : { upstream: route.upstream, repository: route.name, reference: target };
}

function serveOutsideV2(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  if ((path === '/healthz' || path === '/readyz') && (req.method === 'GET' || req.method === 'HEAD')) {
    sendJson(res, req, 200, '{"status":"ok"}');
    return;
  }
  throw new OciError('UNSUPPORTED', 'not found', { status: 404 });
}
