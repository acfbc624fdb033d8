import { parseDigest, type Digest } from '../../oci/index.js';
import type { BlobRecord, ManifestRecord, ReferrersRecord, RepositoryLink, TagRecord } from '../types.js';

/**
 * Keys: `tag:<upstream>/<repository>:<tag>`, `manifest:<digest>`, `blob:<digest>`,
 * `link:<digest>:<upstream>/<repository>`, `referrers:<upstream>/<repository>@<digest>?<page>`. The upstream name is URI-encoded so it cannot contain the
 * `/` that starts the repository, and a repository never contains `:` (nor a tag, nor a digest's
 * hex), so distinct keys never collide and a key parses back. A link key starts with its digest so
 * that the links of one digest share a prefix.
 */
export function tagKey(upstream: string, repository: string, tag: string): string {
  return `tag:${encodeURIComponent(upstream)}/${repository}:${tag}`;
}

export function parseTagKey(key: string): { upstream: string; repository: string; tag: string } | undefined {
  const m = /^tag:([^/]+)\/([^:]+):([^:]+)$/.exec(key);
  if (m === null) return undefined;
  try {
    return { upstream: decodeURIComponent(m[1] ?? ''), repository: m[2] ?? '', tag: m[3] ?? '' };
  } catch {
    return undefined;
  }
}

export function referrersKey(upstream: string, repository: string, subject: Digest, page: string): string {
  return `referrers:${encodeURIComponent(upstream)}/${repository}@${subject}?${page}`;
}

export function linkKey(upstream: string, repository: string, digest: Digest): string {
  return `${linkPrefix(digest)}${encodeURIComponent(upstream)}/${repository}`;
}

export function linkPrefix(digest: Digest): string {
  return `link:${digest}:`;
}

/** The repository part of a link key, after `linkPrefix(digest)`. */
export function parseLinkSuffix(suffix: string): RepositoryLink | undefined {
  const m = /^([^/:]+)\/([^:]+)$/.exec(suffix);
  if (m === null) return undefined;
  try {
    return { upstream: decodeURIComponent(m[1] ?? ''), repository: m[2] ?? '' };
  } catch {
    return undefined;
  }
}

/** A link's value says nothing yet beyond its key; any object counts, so later fields stay readable. */
export const LINK_RECORD: object = Object.freeze({});

// Records come back from disk or Redis, possibly written by another version: anything
// that does not have the expected shape counts as absent rather than reaching the caller.

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isLinkRecord(value: unknown): boolean {
  return isObject(value);
}

export function toTagRecord(value: unknown): TagRecord | undefined {
  if (!isObject(value)) return undefined;
  const { digest, mediaType, size, fetchedAt, pulledAt, syncedAt } = value;
  if (typeof digest !== 'string' || typeof mediaType !== 'string' || typeof size !== 'number' || typeof fetchedAt !== 'number') {
    return undefined;
  }
  if (pulledAt !== undefined && typeof pulledAt !== 'number') return undefined;
  if (syncedAt !== undefined && typeof syncedAt !== 'number') return undefined;
  try {
    return { ...value, digest: parseDigest(digest), mediaType, size, fetchedAt };
  } catch {
    return undefined;
  }
}

/** When a tag was last of use (a client pull, a sync, an upstream confirmation or import): what `prune --older-than` ages by. */
export function tagLastUsed(record: TagRecord): number {
  return Math.max(record.fetchedAt, record.pulledAt ?? 0, record.syncedAt ?? 0);
}

export function toManifestRecord(value: unknown): ManifestRecord | undefined {
  if (!isObject(value)) return undefined;
  const { mediaType, size } = value;
  if (typeof mediaType !== 'string' || typeof size !== 'number') return undefined;
  return { ...value, mediaType, size };
}

export function toBlobRecord(value: unknown): BlobRecord | undefined {
  if (!isObject(value)) return undefined;
  const { size, upstreams } = value;
  if (typeof size !== 'number' || !Array.isArray(upstreams) || !upstreams.every((u) => typeof u === 'string')) {
    return undefined;
  }
  return { ...value, size, upstreams: upstreams as string[] };
}

export function toReferrersRecord(value: unknown): ReferrersRecord | undefined {
  if (!isObject(value)) return undefined;
  const { body, next, fetchedAt } = value;
  if ((body !== null && typeof body !== 'string') || typeof fetchedAt !== 'number') return undefined;
  if (next !== undefined && typeof next !== 'string') return undefined;
  return { ...value, body, fetchedAt };
}
