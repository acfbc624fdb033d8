import { ConfigError } from './errors.js';
import type { Attempt, Json } from './fields.js';
import { parseDuration } from './units.js';

/** How long a failed endpoint is passed over when the upstream has others (`endpointCooldown`). */
export const DEFAULT_ENDPOINT_COOLDOWN = '30s';

export interface ParsedEndpoints {
  /** Every URL contacted, in the order tried; [] only for an offline upstream without any. */
  readonly endpoints: readonly URL[];
  /** `url` as configured, else the last endpoint: the origin, which answers authoritatively. */
  readonly url: URL | undefined;
  readonly endpointCooldownMs: number;
}

/**
 * `url` and `endpoints` of one upstream. `endpoints` lists the URLs to try in order (a regional
 * mirror first, the origin last). With `url` as well, `url` is the origin: it is tried after the
 * listed endpoints unless the list already names it (then its place there counts). Each entry
 * obeys the rules of `url` (parseUrl names `<key>.endpoints[i]`).
 */
export function parseEndpoints(u: Json, key: string, url: URL | undefined, parseUrl: (value: unknown, key: string) => URL, attempt: Attempt): ParsedEndpoints {
  const endpointCooldownMs = attempt(() => parseCooldown(u['endpointCooldown'], `${key}.endpointCooldown`), 1);
  const fallback = { endpoints: url === undefined ? [] : [url], url, endpointCooldownMs };
  return attempt(() => ({ ...fallback, ...parseList(u['endpoints'], key, url, parseUrl) }), fallback);
}

function parseList(raw: unknown, key: string, url: URL | undefined, parseUrl: (value: unknown, key: string) => URL): Pick<ParsedEndpoints, 'endpoints' | 'url'> | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) throw new ConfigError(`${key}.endpoints`, 'must be a list of registry URLs, e.g. ["https://mirror.example", "https://registry.example"]');
  if (raw.length === 0) throw new ConfigError(`${key}.endpoints`, 'must not be empty: list at least one registry URL, or leave the key out and set url');
  const endpoints: URL[] = [];
  raw.forEach((value, i) => {
    const endpoint = parseUrl(value, `${key}.endpoints[${i}]`);
    if (endpoints.some((e) => sameEndpoint(e, endpoint))) throw new ConfigError(`${key}.endpoints[${i}]`, `"${endpoint.href}" is listed twice`);
    endpoints.push(endpoint);
  });
  if (url !== undefined && !endpoints.some((e) => sameEndpoint(e, url))) endpoints.push(url);
  return { endpoints, url: url ?? endpoints[endpoints.length - 1] };
}

function parseCooldown(value: unknown, key: string): number {
  const ms = parseDuration(value ?? DEFAULT_ENDPOINT_COOLDOWN);
  if (ms === undefined || ms <= 0) throw new ConfigError(key, 'must be a positive duration such as "30s"');
  return ms;
}

/** The same API base: a trailing slash makes no difference to the requests sent. */
function sameEndpoint(a: URL, b: URL): boolean {
  const base = (u: URL) => `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  return base(a) === base(b);
}
