import { Coalescer } from '../concurrency/index.js';
import type { OnlineUpstreamConfig } from '../config/index.js';
import { UpstreamError } from './errors.js';
import { realmMayReceiveCredentials } from './realm-trust.js';
import { describeUrl } from './redact.js';
import { badResponse, discard, failureFromStatus, readCapped, type ErrorContext } from './responses.js';
import type { Transport } from './transport.js';

/** Where tokens come from, as a Bearer challenge named it. */
export interface TokenRealm {
  readonly realm: URL;
  readonly service: string | undefined;
}

export interface IssuedToken {
  readonly token: string;
  /** The configured credentials went to the realm and it accepted them. */
  readonly credentialed: boolean;
}

interface CachedToken extends IssuedToken {
  readonly expiresAt: number;
}

/** Token responses are a few KiB; a realm that sends more is broken or hostile (checklist 9). */
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
/** distribution's client default when `expires_in` is absent (registry-protocol.md §3.2). */
const DEFAULT_LIFETIME_MS = 60_000;
/** Renew this long before expiry (at most a tenth of the lifetime) so a token never dies in flight. */
const RENEW_MARGIN_MS = 10_000;
/** One entry per repository pulled; bounded so a long-running mirror does not grow without end. */
const MAX_CACHED_TOKENS = 1000;

/**
 * Bearer tokens for one upstream (distribution token.md, registry-protocol.md §3.1-3.2): a cache per
 * (realm, service, scope) with early renewal, and one shared fetch per key however many requests
 * need it at once. The credential identity is implied: one instance serves one configured account.
 */
export class TokenAuth {
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Coalescer<CachedToken>();

  constructor(
    private readonly config: OnlineUpstreamConfig,
    private readonly transport: Transport,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A token for `cacheScope` (what later requests look it up by), fetched with `requestScope`
   * (a challenge's own scope when it named one). Shared fetches take no caller signal: one caller
   * leaving must not fail the others; timeouts bound them.
   */
  async get(realm: TokenRealm, cacheScope: string, requestScope: string = cacheScope): Promise<IssuedToken> {
    const key = cacheKey(realm, cacheScope);
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.expiresAt > this.now()) return cached;
    const fresh = await this.inflight.run(key, () => this.fetch(realm, requestScope)).promise;
    this.store(key, fresh);
    return fresh;
  }

  /** Forget `token` after upstream refused it; a token another request already renewed stays. */
  invalidate(realm: TokenRealm, cacheScope: string, token: string): void {
    const key = cacheKey(realm, cacheScope);
    if (this.cache.get(key)?.token === token) this.cache.delete(key);
  }

  private store(key: string, token: CachedToken): void {
    this.cache.delete(key);
    this.cache.set(key, token);
    // Map keeps insertion order: the first key is the least recently stored.
    while (this.cache.size > MAX_CACHED_TOKENS) {
      const oldest = this.cache.keys().next();
      if (oldest.done === true) break;
      this.cache.delete(oldest.value);
    }
  }

  private async fetch(realm: TokenRealm, scope: string): Promise<CachedToken> {
    const url = new URL(realm.realm.href);
    if (realm.service !== undefined) url.searchParams.set('service', realm.service);
    // One `scope=` per scope; a challenge may list several separated by spaces (§3.1).
    for (const s of scope.split(' ')) if (s !== '') url.searchParams.append('scope', s);
    const { username, password } = this.config;
    const credentialed = username !== undefined && password !== undefined && realmMayReceiveCredentials(realm.realm, this.config.url);
    const authorization = credentialed ? basicAuthorization(username, password) : undefined;
    const ctx: ErrorContext = { upstream: this.config.name, method: 'GET', url };
    return this.transport.send({ method: 'GET', url, authorization, followRedirects: false }, async (ex) => {
      if (ex.status === 200) {
        const body = await readCapped(ctx, ex.body, ex.headers, MAX_TOKEN_RESPONSE_BYTES);
        return { ...parseTokenResponse(ctx, body, this.now()), credentialed };
      }
      if (ex.status === 401 || ex.status === 403) {
        discard(ex.body);
        const configured = username !== undefined && password !== undefined;
        const credentials = credentialed ? 'rejected' : configured ? 'withheld' : 'none';
        const why = credentialed
          ? 'rejected the configured credentials'
          : configured
            ? "refused an anonymous token (the configured credentials were withheld: the realm is outside the upstream's domain or not https)"
            : 'refused an anonymous token';
        throw new UpstreamError(this.config.name, 'unauthorized', `token realm ${describeUrl(url)} ${why} (${ex.status})`, { status: ex.status, credentials });
      }
      if (ex.status === 429 || ex.status >= 500) throw await failureFromStatus(ctx, ex.status, ex.headers, ex.body);
      discard(ex.body);
      throw badResponse(ctx, `token realm answered ${ex.status}`, ex.status);
    });
  }
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

function cacheKey(realm: TokenRealm, scope: string): string {
  return `${realm.realm.href}\u0000${realm.service ?? ''}\u0000${scope}`;
}

function parseTokenResponse(ctx: ErrorContext, body: Buffer, receivedAt: number): Omit<CachedToken, 'credentialed'> {
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
    json = parsed as Record<string, unknown>;
  } catch {
    throw badResponse(ctx, 'token response is not a JSON object');
  }
  // distribution's client prefers access_token when both are present (§3.2).
  const token = nonEmptyString(json['access_token']) ?? nonEmptyString(json['token']);
  // It becomes a header value: refuse anything that could not be one (or could split one).
  if (token === undefined || !/^[\x21-\x7e]+$/.test(token)) throw badResponse(ctx, 'token response has no usable token');
  const expiresIn = json['expires_in'];
  const lifetime = typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_LIFETIME_MS;
  // issued_at only corrects for time spent in transit; one further back than a whole lifetime (or
  // in the future) says the realm's clock differs from ours, and then our receipt time is better.
  const issuedAt = typeof json['issued_at'] === 'string' ? Date.parse(json['issued_at']) : Number.NaN;
  const start = !Number.isNaN(issuedAt) && issuedAt <= receivedAt && issuedAt > receivedAt - lifetime ? issuedAt : receivedAt;
  return { token, expiresAt: start + lifetime - Math.min(RENEW_MARGIN_MS, lifetime / 10) };
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
