import type { Readable } from 'node:stream';
import { UpstreamError } from './errors.js';
import { RouteFailure } from './dispatchers.js';
import { describeUrl, safeCause } from './redact.js';

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** The first value of a header (undici gives arrays for repeated headers). */
export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A non-negative integer header (Content-Length), or undefined when absent or malformed. */
export function lengthHeader(headers: Headers, name = 'content-length'): number | undefined {
  const v = header(headers, name)?.trim();
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined;
  return Number(v);
}

/** `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), as whole seconds from now. */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
  const v = header(headers, 'retry-after')?.trim();
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** Docker Hub's `ratelimit-remaining: 97;w=21600` (registry-protocol.md §3.6). */
export function rateLimitRemaining(headers: Headers): number | undefined {
  const m = /^\s*(\d+)/.exec(header(headers, 'ratelimit-remaining') ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** Throws away a body we do not need without waiting for it; a large or stalled one closes its socket. */
export function discard(body: Readable & { dump?: (o: { limit: number }) => Promise<unknown> }): void {
  if (typeof body.dump === 'function') {
    body.dump({ limit: 64 * 1024 }).catch(() => {});
  } else {
    body.on('error', () => {});
    body.destroy();
  }
}

/**
 * Reads a whole body, refusing more than `max` bytes (checked against Content-Length up front and
 * counted while reading, since upstream may send chunked). Stream errors propagate as they are.
 */
export async function readCapped(ctx: ErrorContext, body: Readable, headers: Headers, max: number): Promise<Buffer> {
  const declared = lengthHeader(headers);
  if (declared !== undefined && declared > max) {
    body.on('error', () => {});
    body.destroy();
    throw badResponse(ctx, `body of ${declared} bytes exceeds the ${max}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > max) {
      body.destroy();
      throw badResponse(ctx, `body exceeds the ${max}-byte limit`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}

/** What a message about one response names: never a query string or a credential. */
export interface ErrorContext {
  readonly upstream: string;
  readonly method: string;
  readonly url: URL;
}

export function badResponse(ctx: ErrorContext, why: string, status?: number): UpstreamError {
  const url = describeUrl(ctx.url);
  return new UpstreamError(ctx.upstream, 'bad-response', `${ctx.method} ${url}: ${why}`, status === undefined ? { reason: why, url } : { status, reason: why, url });
}

export function unavailable(ctx: ErrorContext, err: unknown): UpstreamError {
  const route = err instanceof RouteFailure ? err : undefined;
  const proxy = route?.proxy;
  const cause = safeCause(route === undefined ? err : route.cause);
  const code = (cause as { code?: string }).code;
  // The cause's message may name the address it could not reach: only the code (and a proxy's origin) is for clients.
  const url = describeUrl(ctx.url);
  const trouble = setupTrouble(ctx.upstream, code, cause.message, proxy, route?.closedUnanswered === true);
  return new UpstreamError(ctx.upstream, 'unavailable', `${ctx.method} ${url}${proxy === undefined ? '' : ` through proxy ${proxy}`}: ${code ?? cause.message}`, {
    cause,
    url,
    ...(code === undefined ? {} : { code }),
    ...(proxy === undefined ? {} : { proxy }),
    ...(trouble === undefined ? {} : { setup: trouble.setup }),
    reason: trouble?.reason ?? (code ? `is unreachable (${code})` : 'is unreachable'),
  });
}

/** Certificate checks that failed: the upstream's chain does not lead to a trusted root (or names another host). */
const UNTRUSTED_CERTIFICATE = /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_(HAS_EXPIRED|NOT_YET_VALID|UNTRUSTED|SIGNATURE_FAILURE|REJECTED)|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/**
 * A failure that points at the mirror's own network settings (a proxy, the trust store, a client
 * certificate) rather than a passing outage: said with the key to look at, and answered 502.
 */
function setupTrouble(upstream: string, code: string | undefined, message: string, proxy: string | undefined, closedUnanswered: boolean): { setup: 'proxy' | 'tls'; reason: string } | undefined {
  if (code !== undefined && UNTRUSTED_CERTIFICATE.test(code)) {
    return { setup: 'tls', reason: `presented a TLS certificate the mirror does not trust (${code}); set upstreams.${upstream}.ca to its CA bundle` };
  }
  // TLS 1.2 refuses in the handshake (an alert); TLS 1.3 servers close the connection unanswered right after it.
  if (code?.startsWith('ERR_SSL_') === true || closedUnanswered) {
    const how = closedUnanswered ? 'closed the TLS connection without answering' : 'refused the TLS handshake';
    return { setup: 'tls', reason: `${how} (${code ?? 'no answer'}); if it requires a client certificate, set upstreams.${upstream}.clientCert and clientKey` };
  }
  if (proxy === undefined) return undefined;
  // undici's words for a CONNECT the proxy answered with anything but 200, and for a 407 in absolute form.
  const status = /Proxy response \((\d{3})\)|\((407)\)/.exec(message);
  const answered = status?.[1] ?? status?.[2];
  // 407 is the standard answer; tinyproxy says 401.
  if (answered === '407' || answered === '401') return { setup: 'proxy', reason: `cannot be reached: proxy ${proxy} wants other credentials (${answered})` };
  if (answered !== undefined) return { setup: 'proxy', reason: `cannot be reached: proxy ${proxy} refused the connection (${answered})` };
  return { setup: 'proxy', reason: `is unreachable through proxy ${proxy} (${code ?? 'no answer'})` };
}

/**
 * The error for a status we did not expect. 404 bodies are read (small) for the OCI code, which the
 * http layer passes through (MANIFEST_UNKNOWN vs NAME_UNKNOWN). Consumes or discards the body.
 */
export async function failureFromStatus(ctx: ErrorContext, status: number, headers: Headers, body: Readable): Promise<UpstreamError> {
  const where = `${ctx.method} ${describeUrl(ctx.url)}`;
  if (status === 404 || status === 403 || status === 429) {
    const ociCode = await readOciCode(ctx, body, headers);
    const details = ociCode === undefined ? { status } : { status, ociCode };
    if (status === 404) return new UpstreamError(ctx.upstream, 'not-found', `${where}: 404${ociCode ? ` ${ociCode}` : ''}`, details);
    if (status === 403) return new UpstreamError(ctx.upstream, 'denied', `${where}: 403${ociCode ? ` ${ociCode}` : ''}`, details);
    const retryAfter = retryAfterSeconds(headers);
    return new UpstreamError(ctx.upstream, 'rate-limited', `${where}: 429`, retryAfter === undefined ? details : { ...details, retryAfter });
  }
  discard(body);
  if (status >= 500) return new UpstreamError(ctx.upstream, 'unavailable', `${where}: ${status}`, { status, url: describeUrl(ctx.url), reason: `answered ${status}` });
  return badResponse(ctx, `unexpected status ${status}`, status);
}

const OCI_ERROR_BODY_LIMIT = 64 * 1024;

async function readOciCode(ctx: ErrorContext, body: Readable, headers: Headers): Promise<string | undefined> {
  try {
    const bytes = await readCapped(ctx, body, headers, OCI_ERROR_BODY_LIMIT);
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    const first = (parsed as { errors?: unknown } | null)?.errors;
    const code = Array.isArray(first) ? (first[0] as { code?: unknown } | undefined)?.code : undefined;
    return typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) ? code : undefined;
  } catch {
    // Free-form or oversized error bodies are allowed (spec §1.10); the status says enough.
    return undefined;
  }
}
