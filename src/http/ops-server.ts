import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { errorSummary, type HttpObserver } from '../observability/index.js';
import { opsRoute, serveOps, type OpsEndpoints } from './ops-routes.js';

export interface OpsServerOptions {
  readonly ops: OpsEndpoints;
  readonly logger: Logger;
  readonly observer?: HttpObserver;
}

/**
 * The `metrics.listen` listener: /metrics, /api/status, the status page and the probes, and nothing
 * of the registry API, so it can sit on a private address while the registry port is public.
 */
export function createOpsServer({ ops, logger, observer }: OpsServerOptions): Server {
  return createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const started = process.hrtime.bigint();
    const route = opsRoute(req.url, ops);
    res.once('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      logger.debug({ method: req.method, route: route ?? 'other', status: res.statusCode, durationMs: seconds * 1000, listener: 'metrics' }, 'request');
      observer?.request(req.method ?? 'GET', route ?? 'other', res.statusCode, seconds);
    });
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not found"}');
      return;
    }
    serveOps(req, res, route, ops).catch((err: unknown) => {
      logger.error({ error: errorSummary(err) }, 'ops endpoint failed');
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { 'content-type': 'application/json' }).end('{"status":"error"}');
    });
  });
}
