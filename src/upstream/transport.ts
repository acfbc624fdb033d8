import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import type { OnlineUpstreamConfig } from '../config/index.js';
import { Dispatchers, routeFailure } from './dispatchers.js';
import { UpstreamError } from './errors.js';
import { badResponse, discard, header, rateLimitRemaining, unavailable, type ErrorContext, type Headers } from './responses.js';
import { isRetryableError, isRetryableStatus, retryPause } from './retry.js';
import type { UpstreamObserver } from './types.js';

export type ResponseBody = Readable;

export interface SendRequest {
  readonly method: 'GET' | 'HEAD';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent to `url` and to redirects that stay on its origin, never across origins (checklist 7). */
  readonly authorization?: string | undefined;
  readonly followRedirects: boolean;
  readonly signal?: AbortSignal | undefined;
  /** A blob's body: read straight into slabs on a connection of its own where no proxy is in the way (direct-get.ts). */
  readonly bulk?: boolean;
}

export interface Exchange {
  readonly status: number;
  readonly headers: Headers;
  readonly body: ResponseBody;
  /** The URL that gave this answer (a storage host after a redirect). */
  readonly url: URL;
  readonly redirected: boolean;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const USER_AGENT = 'regmirror';

/**
 * HTTP for one upstream: undici agents, hand-followed redirects, one retry, and the observer.
 * `request()` rather than fetch: it streams bodies without web-stream overhead, adds no
 * Accept-Encoding and never decodes (registry-protocol.md §3.5), so bytes stay what upstream hashed.
 */
export class Transport {
  /** The registry and its token realm; keep-alive per origin inside. */
  private readonly agent: Dispatchers;
  /** Storage hosts reached through redirects (signed URLs): separate pools, never a registry token. */
  private readonly storageAgent: Dispatchers;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: OnlineUpstreamConfig,
    private readonly observer: UpstreamObserver,
  ) {
    // Both make the same proxy and TLS choice: the token realm and the storage hosts leave as the registry does.
    this.agent = new Dispatchers(config);
    this.storageAgent = new Dispatchers(config);
  }

  /**
   * One logical request: `consume` turns the answer into a value (reading a body if it needs to).
   * Connection failures, timeouts and 5xx are retried once, and so are body failures inside
   * `consume` — it is the caller's promise that nothing has been handed on before it resolves.
   */
  async send<T>(req: SendRequest, consume: (ex: Exchange) => Promise<T>): Promise<T> {
    const ctx: ErrorContext = { upstream: this.config.name, method: req.method, url: req.url };
    // Throws what may not be retried; returns after the pause when one more attempt is allowed.
    const retryOrThrow = async (err: unknown, mayRetry: boolean): Promise<void> => {
      if (err instanceof UpstreamError) throw err;
      throwIfAborted(req.signal);
      if (!mayRetry || !isRetryableError(err)) throw unavailable(ctx, err);
      await retryPause(req.signal);
    };
    for (let attempt = 0; ; attempt++) {
      const mayRetry = attempt === 0;
      let ex: Exchange;
      try {
        ex = await this.exchange(req);
      } catch (err) {
        await retryOrThrow(err, mayRetry);
        continue;
      }
      if (mayRetry && isRetryableStatus(ex.status)) {
        discard(ex.body);
        await retryPause(req.signal);
        continue;
      }
      try {
        return await consume(ex);
      } catch (err) {
        await retryOrThrow(err, mayRetry);
      }
    }
  }

  /** Aborts whatever is in flight and closes every pooled connection; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.agent.destroy(), this.storageAgent.destroy()]).then(() => undefined);
    return this.closing;
  }

  private async exchange(req: SendRequest): Promise<Exchange> {
    let url = req.url;
    let authorization = req.authorization;
    const upstreamOrigin = this.config.url.origin;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
      if (authorization !== undefined) headers['authorization'] = authorization;
      const route = (hop === 0 || url.origin === upstreamOrigin ? this.agent : this.storageAgent).route(url);
      const started = performance.now();
      let res: { statusCode: number; headers: Headers; body: ResponseBody };
      try {
        res =
          req.bulk === true && req.method === 'GET' && route.direct !== undefined
            ? await route.direct.get(url, headers, req.signal)
            : await request(url, { dispatcher: route.dispatcher, method: req.method, headers, signal: req.signal });
      } catch (err) {
        this.report(req.method, 'error', started);
        throw req.signal?.aborted === true ? err : routeFailure(err, route, url, this.config.tls.client !== undefined);
      }
      this.report(req.method, res.statusCode, started);
      if (url.origin === upstreamOrigin) {
        const remaining = rateLimitRemaining(res.headers);
        if (remaining !== undefined) this.observer.rateLimitRemaining(this.config.name, remaining);
      }
      if (!req.followRedirects || !REDIRECT_STATUSES.has(res.statusCode)) {
        return { status: res.statusCode, headers: res.headers, body: res.body, url, redirected: hop > 0 };
      }
      discard(res.body);
      url = this.redirectTarget({ upstream: this.config.name, method: req.method, url }, res.statusCode, header(res.headers, 'location'), hop);
      // Signed storage URLs must never see a registry token or Basic credentials (checklist 7).
      if (url.origin !== req.url.origin) authorization = undefined;
    }
  }

  private redirectTarget(ctx: ErrorContext, status: number, location: string | undefined, hop: number): URL {
    if (location === undefined) throw badResponse(ctx, `${status} without Location`, status);
    if (hop >= MAX_REDIRECTS) throw badResponse(ctx, `more than ${MAX_REDIRECTS} redirects`, status);
    let next: URL;
    try {
      next = new URL(location, ctx.url);
    } catch {
      throw badResponse(ctx, `${status} to an invalid Location`, status);
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') throw badResponse(ctx, `${status} to a non-HTTP Location`, status);
    next.username = '';
    next.password = '';
    next.hash = '';
    return next;
  }

  private report(method: string, status: number | 'error', started: number): void {
    this.observer.upstreamRequest({ upstream: this.config.name, method, status, seconds: (performance.now() - started) / 1000 });
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  // The caller gave up: its own reason, not an upstream failure, and never a retry.
  signal?.throwIfAborted();
}
