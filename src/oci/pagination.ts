import { MAX_LAST_LENGTH, MAX_PAGE_SIZE } from './route.js';

/** A page of a name list (tags, catalog) as the client asked for it; undefined: not given. */
export interface PageQuery {
  readonly n: number | undefined;
  readonly last: string | undefined;
}

/** From the start, at the registry's own page size. */
export const FIRST_PAGE: PageQuery = { n: undefined, last: undefined };

/** The URI and the rel values of each link-value of an RFC 8288 Link header. */
function* links(header: string): Generator<{ uri: string; rels: string[] }> {
  let i = 0;
  // Bounded: every iteration consumes at least one character of the header.
  while (i < header.length) {
    const open = header.indexOf('<', i);
    if (open === -1) return;
    const close = header.indexOf('>', open + 1);
    if (close === -1) return;
    const uri = header.slice(open + 1, close);
    // Parameters run to the next ',' outside a quoted string.
    let j = close + 1;
    let quoted = false;
    for (; j < header.length; j++) {
      const c = header[j];
      if (quoted && c === '\\') j++;
      else if (c === '"') quoted = !quoted;
      else if (c === ',' && !quoted) break;
    }
    const rels: string[] = [];
    for (const m of header.slice(close + 1, j).matchAll(/;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))/gi)) {
      rels.push(...m.slice(1).join('').toLowerCase().split(/\s+/)); // exactly one group matched
    }
    yield { uri, rels };
    i = j + 1;
  }
}

/**
 * The `n`/`last` of upstream's rel="next" link (§1.6), to be rebuilt on our own origin and path
 * by tagsListLink. undefined when there is no usable next page, including a next URL without
 * n or last: relaying it would send the client back to the first page forever.
 */
export function nextPageFromLink(link: string | undefined): PageQuery | undefined {
  const url = nextLinkUrl(link);
  if (url === undefined) return undefined;
  const rawN = url.searchParams.get('n');
  // Our own route refuses n above MAX_PAGE_SIZE: drop such an n rather than relay a link that fails.
  const n = rawN !== null && /^\d{1,6}$/.test(rawN) && Number(rawN) <= MAX_PAGE_SIZE ? Number(rawN) : undefined;
  const rawLast = url.searchParams.get('last');
  const last = rawLast === null || rawLast === '' ? undefined : rawLast;
  if (last !== undefined && last.length > MAX_LAST_LENGTH) return undefined;
  if (n === undefined && last === undefined) return undefined;
  return { n, last };
}

/** The URL of a Link header's first rel="next" link; undefined without one or when it does not parse. */
export function nextLinkUrl(link: string | undefined): URL | undefined {
  if (link === undefined) return undefined;
  for (const { uri, rels } of links(link)) {
    if (!rels.includes('next')) continue;
    try {
      // Relative links are the norm (`</v2/x/tags/list?last=a&n=2>`); the base is a placeholder.
      return new URL(uri, 'http://upstream.invalid/');
    } catch {
      return undefined;
    }
  }
  return undefined;
}

// Valid names are [a-z0-9._/-], upstream prefixes add ':'; anything else is encoded anyway so
// the URL can never break out of the <...> of the Link header.
export function encodePath(name: string): string {
  return name.replace(/[^A-Za-z0-9._~:/-]/g, (c) => encodeURIComponent(c));
}

/** Our own rel="next" Link for a tags page, keeping the client's path prefix and ns (checklist 23). */
export function tagsListLink(target: { readonly clientName: string; readonly ns: string | undefined }, next: PageQuery): string {
  const query = new URLSearchParams();
  if (next.n !== undefined) query.set('n', String(next.n));
  if (next.last !== undefined) query.set('last', next.last);
  if (target.ns !== undefined) query.set('ns', target.ns);
  const search = query.size === 0 ? '' : `?${query.toString()}`;
  return `</v2/${encodePath(target.clientName)}/tags/list${search}>; rel="next"`;
}

/**
 * One page of a sorted, duplicate-free name list held here (tags, catalog): the names after `last`,
 * at most `n` of them, and where the next page starts when more follow (distribution's semantics).
 */
export function pageOf(names: readonly string[], query: PageQuery): { items: string[]; next: PageQuery | undefined } {
  const { last } = query;
  const after = last === undefined ? names : names.filter((name) => name > last);
  if (query.n === undefined || after.length <= query.n) return { items: [...after], next: undefined };
  const items = after.slice(0, query.n);
  return { items, next: items.length === 0 ? undefined : { n: query.n, last: items[items.length - 1] } };
}
