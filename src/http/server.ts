import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsListener, type Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { allowAll, AccessChallenge, AccessDenied, type Access, type AccessController, type Grant } from '../access/index.js';
import { OciError, ociErrorBody, parseRequest, resolveRoute, type RepositoryName, type Route, type RouteContext } from '../oci/index.js';
import type { HeldRepositories, RegistryReader } from '../mirror/index.js';
import { errorSummary, LogLimiter, noopAudit, TrustedProxies, type AuditDecision, type AuditSink, type HttpObserver } from '../observability/index.js';
import { auditEvent } from './audit-event.js';
import { delivered } from './delivery.js';
import { answerEdges, headerTimeouts } from './edges.js';
import { toErrorAnswer } from './errors.js';
import { logServerFailure } from './failure-log.js';
import { TLS_MIN_VERSION } from './tls.js';
import { dispatch, NOT_FOUND_KIND, sendJson, type RequestNote } from './handlers.js';
import { authorizeOps, opsRoute, QUIET_ROUTES, serveOps, type OpsEndpoints } from './ops-routes.js';
import { accessRequest } from './access-request.js';
import type { TokenEndpoint } from './token-route.js';
import { UpstreamError } from '../upstream/index.js';
import type { PeerEndpoint } from './peer-route.js';

export interface HttpServerOptions {
  /** What the registry API serves: the mirror, or a decorator of it. */
  readonly reader: RegistryReader;
  readonly routes: RouteContext;
  readonly logger: Logger;
  /** Health, readiness, metrics and status endpoints; without it /healthz and /readyz answer 200. */
  readonly ops?: OpsEndpoints;
  readonly observer?: HttpObserver;
  /** Who may pull what, and who may read the ops endpoints; everyone everything by default. */
  readonly access?: AccessController;
  /** Told about every finished /v2 request; nothing by default. */
  readonly audit?: AuditSink;
  /** `/v2/token`, served when auth is on (it audits its own events). */
  readonly tokens?: TokenEndpoint;
  /** What `/v2/_catalog` lists; without it the catalog is not served. */
  readonly catalog?: HeldRepositories;
  /** How long a client may take to send its request headers (Node's default, 60 s, unless set): then 408. */
  readonly headersTimeoutMs?: number;
  /** Which 5xx causes were logged lately (shared by the plain and TLS listeners); one per listener by default. */
  readonly failureLog?: LogLimiter;
  /** `access.trustedProxies`: whose X-Forwarded-For names the client in the access log. */
  readonly trustedProxies?: readonly string[];
  /** Counts the responses being sent, for shutdown to say what it waits for. */
  readonly inFlight?: ResponsesInFlight;
  /** With `cluster`: the internal endpoint the replicas fetch blobs from each other on. */
  readonly peers?: PeerEndpoint;
}

/** Responses the registry listeners are still sending: what a shutdown waits for, or cuts short. */
export class ResponsesInFlight {
  private open = 0;
  private total = 0;

  get count(): number {
    return this.open;
  }

  /** Responses ever started: requests that came and went between two looks still show here. */
  get started(): number {
    return this.total;
  }

  track(res: ServerResponse): void {
    this.open++;
    this.total++;
    res.once('close', () => void this.open--);
  }
}

/** The registry listener: /v2/ API plus the ops endpoints (health, readiness, metrics, status). */
export function createHttpServer(options: HttpServerOptions): Server {
  return answerEdges(createServer({ keepAliveTimeout: 30_000, ...headerTimeouts(options.headersTimeoutMs) }, registryHandler(options)));
}

/**
 * The registry API over HTTPS. Client certificates are asked for, never required, and only when a
 * `tls.clientCA` will verify them: a client without one is anonymous, not refused, and an unverified
 * one is simply no identity (so the policy, not the handshake, decides). The certificate comes from
 * setSecureContext before listening, and again on every rotation.
 */
export function createHttpsServer(options: HttpServerOptions, { clientCertificates }: { clientCertificates: boolean }): HttpsServer {
  return answerEdges(
    createHttpsListener(
      { keepAliveTimeout: 30_000, ...headerTimeouts(options.headersTimeoutMs), minVersion: TLS_MIN_VERSION, requestCert: clientCertificates, rejectUnauthorized: false },
      registryHandler(options),
    ),
  );
}

/** What the registry listeners, plain or TLS, do with a request. */
function registryHandler(options: HttpServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const withLog = { ...options, failureLog: options.failureLog ?? new LogLimiter(), proxies: new TrustedProxies(options.trustedProxies ?? []) };
  return (req, res) => {
    options.inFlight?.track(res);
    void handle(withLog, req, res);
  };
}

type Handling = HttpServerOptions & { readonly proxies: TrustedProxies };

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
  /** Whom an AccessDenied named: who was refused. */
  refused?: string;
  /** Why content access control allowed was refused (a policy rule's message). */
  reason?: string;
}

/** parse → resolve target → authorize → dispatch, then record once the response is over. */
async function handle(options: Handling, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { reader, routes, ops = {}, access = allowAll } = options;
  const aborter = new AbortController();
  const ex: Exchange = { requestId: randomUUID(), started: process.hrtime.bigint(), signal: aborter.signal, note: {}, routeName: 'other', registryApi: true, decision: 'none' };
  res.setHeader('docker-distribution-api-version', 'registry/2.0');
  res.setHeader('x-request-id', ex.requestId);
  res.on('close', () => {
    if (!res.writableFinished) aborter.abort();
  });
  try {
    // Before the route grammar, which refuses every POST under /v2: the OAuth2 grants are POSTs.
    if (options.tokens?.matches(req.url) === true) {
      ex.registryApi = false;
      ex.routeName = 'token';
      await options.tokens.serve(req, res, ex.requestId);
      return;
    }
    if (options.peers?.matches(req.url) === true) {
      ex.registryApi = false;
      ex.routeName = 'peer';
      await options.peers.serve(req, res, aborter.signal, ex.note);
      return;
    }
    const parsed = parseRequest(req.method ?? 'GET', req.url ?? '/');
    if (parsed === undefined) {
      const op = opsRoute(req.url, ops);
      ex.registryApi = false;
      if (op === undefined) throw new OciError('UNSUPPORTED', 'not found', { status: 404 });
      ex.routeName = op;
      await authorizeOps(access, req, op);
      await serveOps(req, res, op, ops);
      return;
    }
    const route = (ex.route = resolveRoute(parsed, routes));
    ex.routeName = route.kind;
    const grant = (ex.grant = await authorize(access, req, route, ex));
    // A listing names no repository up front: the catalog filters what it lists through the same policy.
    const catalog = options.catalog && { held: options.catalog, routes, canRead: (upstream: string, name: RepositoryName) => access.canRead(grant, upstream, name) };
    await dispatch({ req, res, reader, signal: aborter.signal, note: ex.note, catalog }, route);
  } catch (err) {
    if (ex.decision === 'allowed' && err instanceof OciError && err.code === 'DENIED') {
      // Access control let it through, the content was refused (a policy rule): audited as denied, with why.
      ex.decision = 'denied';
      ex.reason = err.message;
    }
    // Upstream's 404 answered again from memory: the access log and the lookup metrics say `negative`.
    if (err instanceof UpstreamError && err.details.remembered === true) ex.note.source = 'negative';
    answerError(options, req, res, ex, err);
  } finally {
    if (res.writableFinished || res.destroyed) record(options, req, res, ex);
    else res.once('close', () => record(options, req, res, ex));
  }
}

async function authorize(access: AccessController, req: IncomingMessage, route: Route, ex: Exchange): Promise<Grant> {
  try {
    const grant = await access.authorize(accessRequest(req), requiredAccess(route));
    ex.decision = 'allowed';
    return grant;
  } catch (err) {
    ex.decision = err instanceof AccessChallenge ? 'challenged' : err instanceof AccessDenied ? 'denied' : 'none';
    if (err instanceof AccessDenied) ex.refused = err.principal;
    throw err;
  }
}

/** What the controller may know of a request: its credentials, where it comes from, a verified client certificate. */

/** What a route needs: a pull of its repository; `/v2/` and the catalog name none. */
function requiredAccess(route: Route): Access[] {
  if (route.kind === 'base' || route.kind === 'catalog') return [];
  return [{ upstream: route.upstream, repository: route.name, action: 'pull' }];
}

function answerError({ logger, failureLog }: HttpServerOptions, req: IncomingMessage, res: ServerResponse, ex: Exchange, err: unknown): void {
  if (ex.signal.aborted) return; // the client left; nothing to answer
  if (res.headersSent) {
    // Too late for a JSON error: cut the body short so the client cannot mistake it for success.
    logger.warn({ requestId: ex.requestId, error: errorSummary(err) }, 'response failed after headers were sent');
    res.destroy();
    return;
  }
  const answer = toErrorAnswer(err, ex.route === undefined ? 'other' : NOT_FOUND_KIND[ex.route.kind], describe(ex.route));
  if (answer.unexpected) logger.error({ requestId: ex.requestId, err }, 'unexpected error');
  if (failureLog !== undefined) logServerFailure(logger, failureLog, err, answer, ex.requestId);
  for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
  sendJson(res, req, answer.status, ociErrorBody(answer.code, answer.message, answer.unexpected ? { requestId: ex.requestId } : undefined));
}

/** The access log line, the request metrics and, for /v2 requests, one audit event. */
function record({ logger, observer, audit = noopAudit, proxies }: Handling, req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
  const { route, note, routeName } = ex;
  const seconds = Number(process.hrtime.bigint() - ex.started) / 1e9;
  const target = describe(route);
  const forwardedFor = req.headers['x-forwarded-for'];
  const fields = {
    requestId: ex.requestId,
    method: req.method,
    route: routeName,
    ...target,
    ...delivered(res, note),
    source: note.source,
    // Whole milliseconds, rounded up: a line never claims a response was faster than it was.
    durationMs: Math.ceil(seconds * 1000),
    client: proxies.clientAddress(req.socket.remoteAddress, typeof forwardedFor === 'string' ? forwardedFor : undefined),
    userAgent: req.headers['user-agent'],
  };
  if (QUIET_ROUTES.has(routeName)) logger.debug(fields, 'request');
  else logger.info(fields, 'request');
  observer?.request(req.method ?? 'GET', routeName, res.statusCode, seconds);
  // Sync and exports look the cache up too, through the mirror: only these answers are clients'.
  if ((route?.kind === 'manifest' || route?.kind === 'blob') && note.source !== undefined) observer?.answered(route.kind, note.source);
  if (route !== undefined && 'upstream' in route && note.bytes !== undefined && note.bytes > 0) {
    // regmirror_served_bytes_total counts blob bodies by source; manifest bytes count per repository only.
    observer?.served(route.upstream, route.name, route.kind === 'blob' ? note.source : undefined, note.bytes);
  }
  if (!ex.registryApi) return;
  audit.record(auditEvent(req, res, { requestId: ex.requestId, routeName, target, grant: ex.grant, decision: ex.decision, refused: ex.refused, reason: ex.reason, note }));
}

function describe(route: Route | undefined): { upstream?: string; repository?: string; reference?: string } {
  if (route === undefined || route.kind === 'base' || route.kind === 'catalog') return {};
  const target = route.kind === 'manifest' ? (route.reference.kind === 'tag' ? route.reference.tag : route.reference.digest) : route.kind === 'tags' ? undefined : route.digest;
  return target === undefined ? { upstream: route.upstream, repository: route.name } : { upstream: route.upstream, repository: route.name, reference: target };
}
