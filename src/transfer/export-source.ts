import type { Readable } from 'node:stream';
import {
  COSIGN_FALLBACK_TAGS,
  fallbackTag,
  MANIFEST_MEDIA_TYPES,
  OciError,
  parseDigest,
  parseReferrersIndex,
  parseTag,
  type Digest,
  type PageQuery,
  type Reference,
} from '../oci/index.js';
import { notFound, type RegistryReader, type RepoRef, type SyncMirror, type TagsReply } from '../mirror/index.js';
import { TransferError } from './errors.js';

export interface ExportedManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Buffer;
}

/**
 * Where an export reads images from: the mirror's pull path (cache first, the upstream through the
 * cache otherwise, so exporting fills the connected mirror), in this process or a serve's over its
 * admin socket. Bytes are checked again as they are written.
 */
export interface ExportSource {
  manifest(ref: RepoRef, reference: Reference): Promise<ExportedManifest>;
  blob(ref: RepoRef, digest: Digest): Promise<{ readonly size: number | undefined; readonly body: Readable }>;
  /** Every tag upstream lists (a sync entry's filters choose among them). */
  tags(ref: RepoRef): Promise<string[]>;
  /** Every repository of the upstream's catalog (a sync entry's pattern). */
  catalog(upstream: string): Promise<string[]>;
  /**
   * The subject's referrers (signatures, SBOMs): the referrers API's list, or where the upstream has
   * none, cosign's `sha256-<hex>.sig/.att/.sbom` tags that exist.
   */
  referrers(ref: RepoRef, subject: Digest): Promise<ReferrerEntry[]>;
}

/** A referrer by digest (listed by the referrers API) or by cosign's fallback tag. */
export interface ReferrerEntry {
  readonly reference: Reference;
  readonly artifactType: string | undefined;
}

export type ExportMirror = Pick<RegistryReader, 'manifest' | 'blob' | 'tags' | 'referrers'> & Pick<SyncMirror, 'catalog'>;

/** The mirror itself. */
export function mirrorExportSource(mirror: ExportMirror): ExportSource {
  return {
    async manifest(ref, reference) {
      const reply = await mirror.manifest(ref, reference, MANIFEST_MEDIA_TYPES);
      if (reply.bytes === undefined) throw new TransferError(`${ref.upstream}/${ref.name}: the mirror answered a manifest without its bytes`);
      return { digest: reply.digest, mediaType: reply.mediaType, bytes: reply.bytes };
    },
    async blob(ref, digest) {
      const reply = await mirror.blob(ref, digest, undefined);
      // Without a Range header the answer is always a body.
      if (reply.kind !== 'body') throw new TransferError(`${digest}: the mirror answered no body`);
      return { size: reply.size, body: reply.body };
    },
    tags: (ref) => allNames((q, signal) => mirror.tags(ref, q, signal), 'tags'),
    catalog: (upstream) => allNames((q, signal) => mirror.catalog(upstream, q, signal), 'repositories'),
    async referrers(ref, subject) {
      try {
        const listed = parseReferrersIndex((await mirror.referrers(ref, subject, undefined, '')).body);
        return listed.map((d) => ({ reference: { kind: 'digest', digest: parseDigest(d.digest) }, artifactType: d.artifactType }));
      } catch (err) {
        if (!missing(err)) throw err;
      }
      const found: ReferrerEntry[] = [];
      for (const { suffix, artifactType } of COSIGN_FALLBACK_TAGS) {
        const reference: Reference = { kind: 'tag', tag: parseTag(fallbackTag(subject, suffix)) };
        try {
          await mirror.manifest(ref, reference, MANIFEST_MEDIA_TYPES);
          found.push({ reference, artifactType });
        } catch (err) {
          if (!missing(err)) throw err;
        }
      }
      return found;
    },
  };
}

const PAGE = 1000;
const MAX_PAGES = 100;

/** Every name of a paginated list (`tags` or `repositories` in the JSON body), following Link. */
export async function allNames(page: (query: PageQuery, signal?: AbortSignal) => Promise<TagsReply>, field: 'tags' | 'repositories'): Promise<string[]> {
  const out: string[] = [];
  let last: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const reply = await page({ n: PAGE, last });
    const list = (JSON.parse(reply.body.toString('utf8')) as Record<string, unknown> | null)?.[field];
    if (Array.isArray(list)) out.push(...list.filter((x): x is string => typeof x === 'string'));
    if (reply.next?.last === undefined) return out;
    last = reply.next.last;
  }
  throw new TransferError(`more than ${PAGE * MAX_PAGES} ${field}: narrow the selection`);
}

/** Upstream has no such thing (a 404), which for referrers is an answer, not a failure. */
function missing(err: unknown): boolean {
  return notFound(err) || (err instanceof OciError && err.status === 404);
}
