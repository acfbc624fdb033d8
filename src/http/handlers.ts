import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  catalogLink,
  catalogName,
  contentRange,
  MediaType,
  OciError,
  pageOf,
  referrersLink,
  parseAccept,
  tagsListLink,
  unsatisfiedContentRange,
  type RepositoryName,
  type Route,
  type RouteContext,
} from '../oci/index.js';
import type { HeldRepositories, RegistryReader, Source } from '../mirror/index.js';
import type { NotFoundKind } from './errors.js';
import { bodyStarted, sendBody } from './send-body.js';

/** Per-request facts the handlers fill in for the access log, metrics and audit. */
export interface RequestNote {
  /** Where a manifest or blob body came from. */
  source?: Source;
  bytes?: number;
}

/** What `/v2/_catalog` needs: what is held, how clients name it, and what this request may read. */
export interface CatalogContext {
  readonly held: HeldRepositories;
  readonly routes: RouteContext;
  /** The read policy applied to the grant this request was given. */
  readonly canRead: (upstream: string, repository: RepositoryName) => boolean;
}

export interface HandlerContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly reader: RegistryReader;
  readonly signal: AbortSignal;
  readonly note: RequestNote;
  /** Without it the catalog is not served. */
  readonly catalog?: CatalogContext;
}

type RouteOf<K extends Route['kind']> = Extract<Route, { kind: K }>;
type Handler<K extends Route['kind']> = (ctx: HandlerContext, route: RouteOf<K>) => Promise<void>;

export const NOT_FOUND_KIND: Readonly<Record<Route['kind'], NotFoundKind>> = {
  base: 'other',
  catalog: 'other',
  manifest: 'manifest',
  blob: 'blob',
  tags: 'tags',
  referrers: 'other',
};

const base: Handler<'base'> = async ({ res, req }) => {
  sendJson(res, req, 200, '{}');
};

const manifest: Handler<'manifest'> = async ({ req, res, reader, note }, route) => {
  const head = req.method === 'HEAD';
  const accept = parseAccept(req.headers.accept);
  const reply = head ? await reader.manifestHead(route, route.reference, accept) : await reader.manifest(route, route.reference, accept);
  note.source = reply.source;
  const etag = `"${reply.digest}"`;
  res.setHeader('docker-content-digest', reply.digest);
  res.setHeader('etag', etag);
  if (matchesEtag(req.headers['if-none-match'], reply.digest)) {
    res.writeHead(304).end();
    return;
  }
  res.writeHead(200, { 'content-type': reply.mediaType, 'content-length': reply.size });
  note.bytes = head ? 0 : reply.size;
  res.end(head ? undefined : reply.bytes);
};

const blob: Handler<'blob'> = async ({ req, res, reader, signal, note }, route) => {
  res.setHeader('docker-content-digest', route.digest);
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('etag', `"${route.digest}"`);
  if (req.method === 'HEAD') {
    const { size } = await reader.blobHead(route, route.digest, signal);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size }).end();
    return;
  }
  const reply = await reader.blob(route, route.digest, singleHeader(req.headers.range), signal);
  if (reply.kind === 'unsatisfiable') {
    throw new OciError('RANGE_INVALID', `requested range not satisfiable for a blob of ${reply.size} bytes`, {
      headers: { 'content-range': unsatisfiedContentRange(reply.size) },
    });
  }
  note.source = reply.source;
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    // Content is addressed by digest: it never changes.
    'cache-control': 'max-age=31536000, immutable',
  };
  if (reply.span !== undefined && reply.size !== undefined) {
    headers['content-range'] = contentRange(reply.span.start, reply.span.end, reply.size);
    headers['content-length'] = reply.span.end - reply.span.start + 1;
  } else if (reply.size !== undefined) {
    headers['content-length'] = reply.size;
  }
  await bodyStarted(reply.body, signal);
  res.writeHead(reply.status, headers);
  await sendBody(reply.body, res, note);
};

const tags: Handler<'tags'> = async ({ req, res, reader, signal }, route) => {
  const page = await reader.tags(route, { n: route.n, last: route.last }, signal);
  if (page.next !== undefined) res.setHeader('link', tagsListLink(route, page.next));
  sendJson(res, req, 200, page.body);
};

/**
 * The repositories held here, never upstream's (a mirror holds a subset, and most registries refuse
 * their catalog): named as this view's client would name them, each filtered through the read policy
 * so a listing never reveals a repository the client could not pull.
 */
const catalog: Handler<'catalog'> = async ({ req, res, catalog }, route) => {
  if (catalog === undefined) throw new OciError('UNSUPPORTED', 'the catalog is not served by this mirror', { status: 404 });
  const names = new Set<string>();
  for (const { upstream, name } of await catalog.held.repositories()) {
    const shown = catalogName(catalog.routes, route.view, upstream, name);
    if (shown !== undefined && catalog.canRead(upstream, name)) names.add(shown);
  }
  const { items, next } = pageOf([...names].sort(), route);
  if (next !== undefined) res.setHeader('link', catalogLink(route.view, next));
  sendJson(res, req, 200, JSON.stringify({ repositories: items }));
};

const referrers: Handler<'referrers'> = async ({ req, res, reader }, route) => {
  const reply = await reader.referrers(route, route.digest, route.artifactType, route.page);
  if (reply.filtered) res.setHeader('oci-filters-applied', 'artifactType');
  if (reply.next !== undefined) res.setHeader('link', referrersLink(route, route.digest, reply.next, route.artifactType));
  sendJson(res, req, 200, reply.body, MediaType.ociIndex);
};

export function dispatch(ctx: HandlerContext, route: Route): Promise<void> {
  switch (route.kind) {
    case 'base':
      return base(ctx, route);
    case 'manifest':
      return manifest(ctx, route);
    case 'blob':
      return blob(ctx, route);
    case 'tags':
      return tags(ctx, route);
    case 'catalog':
      return catalog(ctx, route);
    case 'referrers':
      return referrers(ctx, route);
    default: {
      const unhandled: never = route;
      throw new Error(`unhandled route ${JSON.stringify(unhandled)}`);
    }
  }
}

export function sendJson(res: ServerResponse, req: IncomingMessage, status: number, body: string | Buffer, contentType = 'application/json'): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-type': contentType, 'content-length': bytes.length });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function matchesEtag(header: string | undefined, digest: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '').replace(/^"|"$/g, '') === digest);
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
