import { encodePath, type PageQuery } from './pagination.js';
import type { RouteContext } from './route.js';

/**
 * Whose repositories a `/v2/_catalog` lists, and how their names are written: each name is one the
 * client can put back in a request made the same way (registry-protocol.md §1.3 resolution).
 * - `all`: every upstream; the default upstream's names bare, the others' behind their path prefix.
 * - `ns`: one upstream (`?ns=`), names as that upstream knows them.
 * - `prefix`: one upstream (`/v2/<upstream>/_catalog`), names behind the prefix the client wrote.
 */
export type CatalogView =
  | { readonly kind: 'all' }
  | { readonly kind: 'ns'; readonly upstream: string; readonly ns: string }
  | { readonly kind: 'prefix'; readonly upstream: string; readonly prefix: string };

/**
 * The name a client of this view uses for an upstream's repository; undefined when the view does not
 * show that upstream. A default-upstream name whose first segment reads as an upstream prefix
 * (`ghcr.io/x` held for the default) keeps the default's own prefix, or it would route elsewhere.
 */
export function catalogName(ctx: RouteContext, view: CatalogView, upstream: string, repository: string): string | undefined {
  switch (view.kind) {
    case 'ns':
      return upstream === view.upstream ? repository : undefined;
    case 'prefix':
      return upstream === view.upstream ? `${view.prefix}/${repository}` : undefined;
    case 'all': {
      const first = repository.slice(0, repository.indexOf('/'));
      const readsAsPrefix = first !== '' && (ctx.upstreams.has(first) || ctx.aliases.has(first));
      return upstream === ctx.defaultUpstream && !readsAsPrefix ? repository : `${upstream}/${repository}`;
    }
  }
}

/** Our rel="next" Link for a catalog page, on the same path and ns as the request. */
export function catalogLink(view: CatalogView, next: PageQuery): string {
  const query = new URLSearchParams();
  if (next.n !== undefined) query.set('n', String(next.n));
  if (next.last !== undefined) query.set('last', next.last);
  if (view.kind === 'ns') query.set('ns', view.ns);
  const path = view.kind === 'prefix' ? `/v2/${encodePath(view.prefix)}/_catalog` : '/v2/_catalog';
  return `<${path}?${query.toString()}>; rel="next"`;
}
