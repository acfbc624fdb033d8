import { parseDigest } from '../../oci/index.js';
import type { BlobRecord, ManifestRecord, TagRecord } from '../types.js';

/**
 * Keys: `tag:<upstream>/<repository>:<tag>`, `manifest:<digest>`, `blob:<digest>`. The upstream
 * name is URI-encoded so it cannot contain the `/` that starts the repository, and a repository
 * never contains `:` (nor a tag), so distinct triples never share a key and a key parses back.
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

// Records come back from disk or Redis, possibly written by another version: anything
// that does not have the expected shape counts as absent rather than reaching the caller.

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function toTagRecord(value: unknown): TagRecord | undefined {
  if (!isObject(value)) return undefined;
  const { digest, mediaType, size, fetchedAt, pulledAt } = value;
  if (typeof digest !== 'string' || typeof mediaType !== 'string' || typeof size !== 'number' || typeof fetchedAt !== 'number') {
    return undefined;
  }
  if (pulledAt !== undefined && typeof pulledAt !== 'number') return undefined;
  try {
    return { ...value, digest: parseDigest(digest), mediaType, size, fetchedAt };
  } catch {
    return undefined;
  }
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
