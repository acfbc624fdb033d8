import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MAX_MANIFEST_BYTES, OciError, parseDigest, parseReference, parseRepositoryName, referenceString, type Digest } from '../oci/index.js';
import { LayoutError } from './errors.js';
import type { ExportSource } from './export-source.js';
import type { CommitRequest, ImportTarget } from './import-target.js';
import { TRANSFER_PREFIX, type FailureKind } from './protocol.js';
import { BlobMismatchError } from './verified-copy.js';

export interface TransferRoutesDeps {
  readonly target: ImportTarget;
  readonly source: ExportSource;
  /** Configured upstream names: nothing else reaches the mirror. */
  readonly upstreams: ReadonlySet<string>;
  readonly onError: (err: unknown) => void;
}

/** Bodies of the JSON requests: a digest list for a large import is well under this. */
const MAX_JSON_BODY = 32 * 1024 * 1024;

/**
 * The server's side of protocol.ts, for the admin socket. Returns false for a path it does not
 * serve. Every input is parsed as untrusted, even over a 0600 socket: the graph a commit names is
 * read back from the cache itself (import-target.ts), never taken from the request.
 */
export function transferRoutes(deps: TransferRoutesDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (!url.pathname.startsWith(TRANSFER_PREFIX)) return false;
    const route = `${req.method ?? ''} ${url.pathname.slice(TRANSFER_PREFIX.length)}`;
    try {
      await dispatch(deps, route, url, req, res);
    } catch (err) {
      const kind: FailureKind = err instanceof LayoutError || err instanceof BlobMismatchError || err instanceof OciError ? 'input' : 'failed';
      if (kind === 'failed') deps.onError(err);
      if (res.headersSent) res.destroy();
      else {
        // An upload the failure cut short: answer, then close rather than read the rest.
        if (!req.complete) res.setHeader('connection', 'close');
        send(res, kind === 'input' ? 400 : 500, { error: err instanceof Error ? err.message : String(err), kind });
        if (!req.complete) res.once('finish', () => req.destroy());
      }
    }
    return true;
  };
}

async function dispatch(deps: TransferRoutesDeps, route: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { target, source } = deps;
  if (route.startsWith('PUT blobs/')) {
    const digest = parseDigest(route.slice('PUT blobs/'.length));
    const size = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) throw new LayoutError('a blob upload needs its content-length');
    // Through a pass-through: a failed write destroys its body, and the socket must live to answer.
    const body = new PassThrough();
    req.pipe(body);
    await target.putBlob(digest, size, body);
    return send(res, 200, {});
  }
  if (route === 'GET blob') {
    const repo = repoOf(deps, url.searchParams.get('upstream'), url.searchParams.get('repository'));
    const blob = await source.blob(repo, parseDigest(url.searchParams.get('digest') ?? ''));
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...(blob.size === undefined ? {} : { 'content-length': String(blob.size) }) });
    // A broken source ends the response short: the client's verification fails on it.
    await pipeline(blob.body, res).catch(() => res.destroy());
    return;
  }
  const body = await readJson(req);
  switch (route) {
    case 'POST missing': {
      const digests = list(body['digests'], 'digests').map((d) => parseDigest(d));
      return send(res, 200, { missing: await target.missing(digests) });
    }
    case 'POST commit':
      await target.commit(commitRequest(deps, body));
      return send(res, 200, {});
    case 'POST manifest': {
      const repo = repoOf(deps, body['upstream'], body['repository']);
      const m = await source.manifest(repo, parseReference(text(body['reference'], 'reference')));
      return send(res, 200, { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes.toString('base64') });
    }
    case 'POST tags':
      return send(res, 200, { names: await source.tags(repoOf(deps, body['upstream'], body['repository'])) });
    case 'POST referrers': {
      const found = await source.referrers(repoOf(deps, body['upstream'], body['repository']), parseDigest(text(body['subject'], 'subject')));
      return send(res, 200, { referrers: found.map((r) => ({ reference: referenceString(r.reference), artifactType: r.artifactType })) });
    }
    case 'POST catalog':
      return send(res, 200, { names: await source.catalog(upstreamOf(deps, body['upstream'])) });
    default:
      send(res, 404, { error: `no transfer route ${route}`, kind: 'failed' });
  }
}

function commitRequest(deps: TransferRoutesDeps, body: Record<string, unknown>): CommitRequest {
  const repo = repoOf(deps, body['upstream'], body['repository']);
  const tag = body['tag'];
  if (tag !== undefined && typeof tag !== 'string') throw new LayoutError('tag must be a string');
  const filtered: Digest[] = list(body['filtered'], 'filtered').map((d) => parseDigest(d));
  return {
    upstream: repo.upstream,
    repository: repo.name,
    tag,
    digest: parseDigest(text(body['digest'], 'digest')),
    mediaType: text(body['mediaType'], 'mediaType'),
    filtered,
    pin: body['pin'] === true,
  };
}

function upstreamOf(deps: TransferRoutesDeps, value: unknown): string {
  const upstream = text(value, 'upstream');
  if (!deps.upstreams.has(upstream)) throw new LayoutError(`${upstream} is not a configured upstream of the running server`);
  return upstream;
}

function repoOf(deps: TransferRoutesDeps, upstream: unknown, repository: unknown) {
  return { upstream: upstreamOf(deps, upstream), name: parseRepositoryName(text(repository, 'repository')) };
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new LayoutError(`${what} must be a string`);
  return value;
}

function list(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) throw new LayoutError(`${what} must be a list of strings`);
  return value;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BODY + MAX_MANIFEST_BYTES) throw new LayoutError('request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new LayoutError('the request body is not a JSON object');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
