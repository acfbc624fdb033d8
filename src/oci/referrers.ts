import { isDigestString } from './digest.js';
import { OciError } from './errors.js';
import { MediaType } from './media-types.js';
import { encodePath, nextLinkUrl } from './pagination.js';

/**
 * The referrers API (distribution-spec 1.1 §"Listing Referrers"): an OCI image index whose
 * `manifests` are descriptors of the manifests whose `subject` is the digest asked for.
 */
export interface ReferrerDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A referrers page's opaque query (upstream's own paging), kept short: it travels in our Link and our keys. */
export const MAX_REFERRERS_PAGE_LENGTH = 1024;

/** The descriptors of a referrers index, checked; throws on anything else (upstream sent something wrong). */
export function parseReferrersIndex(bytes: Buffer | string): ReferrerDescriptor[] {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch {
    throw new Error('the referrers list is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { manifests?: unknown }).manifests)) {
    throw new Error('the referrers list is not an image index with a manifests array');
  }
  return ((doc as { manifests: unknown[] }).manifests).map((d, i) => {
    const { mediaType, digest, size, artifactType, annotations } = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
    if (typeof mediaType !== 'string' || typeof digest !== 'string' || !isDigestString(digest) || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new Error(`referrer ${i} is not a descriptor with mediaType, digest and size`);
    }
    if (artifactType !== undefined && typeof artifactType !== 'string') throw new Error(`referrer ${i} has an artifactType that is not a string`);
    if (annotations !== undefined && (typeof annotations !== 'object' || annotations === null || Object.values(annotations).some((v) => typeof v !== 'string'))) {
      throw new Error(`referrer ${i} has annotations that are not strings`);
    }
    return { mediaType, digest, size, ...(artifactType === undefined ? {} : { artifactType }), ...(annotations === undefined ? {} : { annotations: annotations as Record<string, string> }) };
  });
}

/** The index a client gets: the descriptors, only those of `artifactType` when one is asked for. */
export function referrersIndex(descriptors: readonly ReferrerDescriptor[], artifactType: string | undefined): Buffer {
  const manifests = artifactType === undefined ? descriptors : descriptors.filter((d) => d.artifactType === artifactType);
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
}

/**
 * The query of upstream's rel="next" link, opaque (registries page referrers as they like): what we
 * send upstream for the next page. undefined without a next link, or with one we cannot relay.
 */
export function nextReferrersPage(link: string | undefined): string | undefined {
  const url = nextLinkUrl(link);
  if (url === undefined) return undefined;
  url.searchParams.delete('artifactType');
  const page = url.searchParams.toString();
  return page === '' || page.length > MAX_REFERRERS_PAGE_LENGTH ? undefined : page;
}

/** The client's paging query: everything but the mirror's own `ns` and the filter, in a stable order. */
export function referrersPage(query: URLSearchParams): string {
  const page = new URLSearchParams([...query].filter(([k]) => k !== 'ns' && k !== 'artifactType'));
  page.sort();
  const text = page.toString();
  if (text.length > MAX_REFERRERS_PAGE_LENGTH) throw new OciError('UNSUPPORTED', `the referrers page query is longer than ${MAX_REFERRERS_PAGE_LENGTH} characters`, { status: 400 });
  return text;
}

/** Our rel="next" Link for a referrers page, on the client's own path, keeping its ns and filter. */
export function referrersLink(target: { readonly clientName: string; readonly ns: string | undefined }, subject: string, page: string, artifactType: string | undefined): string {
  const query = new URLSearchParams(page);
  if (artifactType !== undefined) query.set('artifactType', artifactType);
  if (target.ns !== undefined) query.set('ns', target.ns);
  return `</v2/${encodePath(target.clientName)}/referrers/${subject}?${query.toString()}>; rel="next"`;
}

/**
 * cosign's tags for what it stores beside an image where the registry has no referrers API
 * (`sha256-<hex>.sig`, `.att`, `.sbom`), the artifact type each stands for, and the artifact types
 * a filter may name for it.
 */
export const COSIGN_FALLBACK_TAGS: readonly { readonly suffix: string; readonly artifactType: string; readonly holds: RegExp }[] = [
  { suffix: 'sig', artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', holds: /cosign\.artifact\.sig|simplesigning/ },
  { suffix: 'att', artifactType: 'application/vnd.dsse.envelope.v1+json', holds: /dsse|in-toto|intoto/ },
  { suffix: 'sbom', artifactType: 'application/vnd.dev.cosign.artifact.sbom.v1+json', holds: /spdx|cyclonedx|sbom/ },
];

export function fallbackTag(subject: string, suffix: string): string {
  return `${subject.replace(':', '-')}.${suffix}`;
}

/** Whether a referrers filter (true: everything) takes this artifact type, or this fallback tag's kind. */
export function referrerWanted(wanted: true | readonly string[], artifactType: string | undefined, holds?: RegExp): boolean {
  if (wanted === true) return true;
  if (holds !== undefined) return wanted.some((t) => holds.test(t));
  return artifactType !== undefined && wanted.includes(artifactType);
}
