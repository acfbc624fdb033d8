import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { AccessChallenge, AccessDenied, allowAll, type AccessController } from '../access/index.js';
import { OciError, ociErrorBody } from '../oci/index.js';
import { errorSummary, type HttpObserver } from '../observability/index.js';
import { toErrorAnswer } from './errors.js';
import { authorizeOps, opsRoute, serveOps, type OpsEndpoints, type OpsRoute } from './ops-routes.js';

export interface OpsServerOptions {
  readonly ops: OpsEndpoints;
  readonly logger: Logger;
  readonly observer?: HttpObserver;
  /** Who may read /metrics and the status endpoints (the same policy as on the main listener). */
  readonly access?: AccessController;
}

/**
 * The `metrics.listen` listener: /metrics, /api/status, the status page and the probes, and nothing
 * of the registry API, so it can sit on a private address while the registry port is public.
 */
export function createOpsServer({ ops, logger, observer, access = allowAll }: OpsServerOptions): Server {
  return createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const started = process.hrtime.bigint();
    const route = opsRoute(req.url, ops);
    res.once('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      logger.debug({ method: req.method, route: route ?? 'other', status: res.statusCode, durationMs: Math.ceil(seconds * 1000), listener: 'metrics' }, 'request');
      observer?.request(req.method ?? 'GET', route ?? 'other', res.statusCode, seconds);
    });
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not found"}');
      return;
    }
    serveAuthorized(req, res, route, ops, access).catch((err: unknown) => {
      if (err instanceof AccessChallenge || err instanceof AccessDenied || err instanceof OciError) {
        const answer = toErrorAnswer(err, 'other');
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(ociErrorBody(answer.code, answer.message));
        return;
      }
      logger.error({ error: errorSummary(err) }, 'ops endpoint failed');
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { 'content-type': 'application/json' }).end('{"status":"error"}');
    });
  });
}

async function serveAuthorized(req: IncomingMessage, res: ServerResponse, route: OpsRoute, ops: OpsEndpoints, access: AccessController): Promise<void> {
  await authorizeOps(access, req, route);
  await serveOps(req, res, route, ops);
}
