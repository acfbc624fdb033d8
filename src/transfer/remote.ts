import { parseDigest, parseReference, referenceString, type Digest } from '../oci/index.js';
import { LayoutError, TransferError } from './errors.js';
import type { ExportSource } from './export-source.js';
import type { ImportTarget } from './import-target.js';
import { readWhole } from './layout-files.js';
import { TRANSFER_PREFIX, type AdminResponse, type AdminTransport, type TransferFailure } from './protocol.js';

/** An import into the storage a running serve holds, through its admin socket. */
export function remoteImportTarget(transport: AdminTransport): ImportTarget {
  return {
    async missing(digests) {
      const body = await postJson(transport, 'missing', { digests });
      return list(body['missing']).map((d) => parseDigest(d));
    },
    async putBlob(digest, size, body) {
      await expectOk(await transport('PUT', `${TRANSFER_PREFIX}blobs/${digest}`, body, { 'content-length': String(size), 'content-type': 'application/octet-stream' }));
    },
    async commit(request) {
      await postJson(transport, 'commit', request);
    },
  };
}

/** An export through a running serve's cache, through its admin socket. */
export function remoteExportSource(transport: AdminTransport): ExportSource {
  return {
    async manifest(ref, reference) {
      const body = await postJson(transport, 'manifest', { upstream: ref.upstream, repository: ref.name, reference: referenceString(reference) });
      const { digest, mediaType, bytes } = body;
      if (typeof digest !== 'string' || typeof mediaType !== 'string' || typeof bytes !== 'string') throw new TransferError('the server answered a malformed manifest');
      return { digest: parseDigest(digest), mediaType, bytes: Buffer.from(bytes, 'base64') };
    },
    async blob(ref, digest: Digest) {
      const query = new URLSearchParams({ upstream: ref.upstream, repository: ref.name, digest });
      const res = await transport('GET', `${TRANSFER_PREFIX}blob?${query.toString()}`);
      if (res.status !== 200) throw await failure(res);
      const length = Number(res.headers['content-length']);
      return { size: Number.isSafeInteger(length) ? length : undefined, body: res.body };
    },
    tags: async (ref) => list((await postJson(transport, 'tags', { upstream: ref.upstream, repository: ref.name }))['names']),
    catalog: async (upstream) => list((await postJson(transport, 'catalog', { upstream }))['names']),
    async referrers(ref, subject) {
      const { referrers } = await postJson(transport, 'referrers', { upstream: ref.upstream, repository: ref.name, subject });
      if (!Array.isArray(referrers)) throw new TransferError('the server answered a malformed referrers list');
      return referrers.map((r: unknown) => {
        const { reference, artifactType } = (r ?? {}) as { reference?: unknown; artifactType?: unknown };
        if (typeof reference !== 'string' || (artifactType !== undefined && typeof artifactType !== 'string')) throw new TransferError('the server answered a malformed referrers list');
        return { reference: parseReference(reference), artifactType };
      });
    },
  };
}

async function postJson(transport: AdminTransport, route: string, request: unknown): Promise<Record<string, unknown>> {
  const res = await transport('POST', `${TRANSFER_PREFIX}${route}`, Buffer.from(JSON.stringify(request)), { 'content-type': 'application/json' });
  return expectOk(res);
}

async function expectOk(res: AdminResponse): Promise<Record<string, unknown>> {
  if (res.status !== 200) throw await failure(res);
  return JSON.parse((await readWhole(res.body)).toString('utf8')) as Record<string, unknown>;
}

/** The server's {error, kind} as the error the CLI maps to an exit code. */
async function failure(res: AdminResponse): Promise<Error> {
  let parsed: Partial<TransferFailure> = {};
  try {
    parsed = JSON.parse((await readWhole(res.body)).toString('utf8')) as Partial<TransferFailure>;
  } catch {
    // not our JSON: described by the status below
  }
  // A server from before export and import answers its generic 404.
  if (res.status === 404 && parsed.kind === undefined) return new TransferError('the running server has no export/import over its admin socket: upgrade it, or stop it and run this alone');
  const message = typeof parsed.error === 'string' ? parsed.error : `the server answered ${res.status}`;
  return parsed.kind === 'input' ? new LayoutError(message) : new TransferError(message);
}

function list(value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) throw new TransferError('the server answered a malformed list');
  return value;
}
