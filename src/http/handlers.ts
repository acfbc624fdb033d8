import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentRange, OciError, parseAccept, tagsListLink, unsatisfiedContentRange, type Route } from '../oci/index.js';
import type { Mirror } from '../mirror/index.js';
import type { Subject } from './errors.js';
import { sendBody } from './send-body.js';

/** Per-request facts the handlers fill in for the access log. */
export interface RequestNote {
  cache?: 'hit' | 'miss';
  bytes?: number;
}

export interface HandlerContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly mirror: Mirror;
  readonly signal: AbortSignal;
  readonly note: RequestNote;
}

type RouteOf<K extends Route['kind']> = Extract<Route, { kind: K }>;
type Handler<K extends Route['kind']> = (ctx: HandlerContext, route: RouteOf<K>) => Promise<void>;

export const SUBJECT: Readonly<Record<Route['kind'], Subject>> = {
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

const manifest: Handler<'manifest'> = async ({ req, res, mirror, note }, route) => {
  const head = req.method === 'HEAD';
  const reply = await mirror.manifest(route, route.reference, parseAccept(req.headers.accept), !head);
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

const blob: Handler<'blob'> = async ({ req, res, mirror, signal, note }, route) => {
  res.setHeader('docker-content-digest', route.digest);
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('etag', `"${route.digest}"`);
  if (req.method === 'HEAD') {
    const { size } = await mirror.blobHead(route, route.digest, signal);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size }).end();
    return;
  }
  const reply = await mirror.blob(route, route.digest, singleHeader(req.headers.range), signal);
  if (reply.kind === 'unsatisfiable') {
    throw new OciError('RANGE_INVALID', `requested range not satisfiable for a blob of ${reply.size} bytes`, {
      headers: { 'content-range': unsatisfiedContentRange(reply.size) },
    });
  }
  note.cache = reply.source === 'cache' ? 'hit' : 'miss';
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
  res.writeHead(reply.status, headers);
  await sendBody(reply.body, res, note);
};

const tags: Handler<'tags'> = async ({ req, res, mirror, signal }, route) => {
  const page = await mirror.tags(route, { n: route.n, last: route.last }, signal);
  if (page.next !== undefined) res.setHeader('link', tagsListLink(route, page.next));
  sendJson(res, req, 200, page.body);
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
      // The catalog is Docker-only and a mirror may omit upstream repositories; listing the local
      // store needs a repository index in the metadata store, which does not exist yet.
      throw new OciError('UNSUPPORTED', 'the catalog is not served by this mirror', { status: 404 });
    case 'referrers':
      // 404 tells clients the API is unsupported, so they use the sha256-<hex> fallback tag, which
      // flows through the ordinary manifest path. Never a 200-empty list we did not ask upstream for.
      throw new OciError('UNSUPPORTED', 'the referrers API is not served by this mirror', { status: 404 });
    default: {
      const unhandled: never = route;
      throw new Error(`unhandled route ${JSON.stringify(unhandled)}`);
    }
  }
}

export function sendJson(res: ServerResponse, req: IncomingMessage, status: number, body: string | Buffer): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function matchesEtag(header: string | undefined, digest: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '').replace(/^"|"$/g, '') === digest);
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
