import { createHmac, timingSafeEqual } from 'node:crypto';
import { OciError, parseDigest, parseRepositoryName, type Digest, type RepositoryName } from '../oci/index.js';

/**
 * The internal endpoint a replica asks a blob's owner on. Outside /v2, so no public route, access
 * rule or policy ever matches it; only a request signed with `cluster.secret` is answered.
 */
export const PEER_BLOB_PREFIX = '/_regmirror/cluster/blobs/';

/** The same, for a manifest by digest: the owner answers its bytes and media type. */
export const PEER_MANIFEST_PREFIX = '/_regmirror/cluster/manifests/';

/** Set on every internal request (the asking replica's URL): it was forwarded once, and is never forwarded again. */
export const FORWARDED_HEADER = 'x-regmirror-forwarded';

/** A signature older or newer than this is refused: a captured header replays for minutes, not forever. */
const MAX_SKEW_MS = 5 * 60_000;

export function peerBlobPath(upstream: string, name: RepositoryName, digest: Digest): string {
  return `${PEER_BLOB_PREFIX}${encodeURIComponent(upstream)}/${name}/${digest}`;
}

export function peerManifestPath(upstream: string, name: RepositoryName, digest: Digest): string {
  return `${PEER_MANIFEST_PREFIX}${encodeURIComponent(upstream)}/${name}/${digest}`;
}

/** What an internal path asks for: `<upstream>/<repository>/<digest>` after either prefix; OCI errors for a malformed one. */
export function parsePeerPath(path: string): { kind: 'blob' | 'manifest'; upstream: string; name: RepositoryName; digest: Digest } {
  const prefix = path.startsWith(PEER_MANIFEST_PREFIX) ? PEER_MANIFEST_PREFIX : PEER_BLOB_PREFIX;
  const parts = path.slice(prefix.length).split('/');
  if (!path.startsWith(prefix) || parts.length < 3) throw new OciError('NAME_INVALID', 'expected /_regmirror/cluster/<blobs|manifests>/<upstream>/<repository>/<digest>');
  let upstream: string;
  try {
    upstream = decodeURIComponent(parts[0]!);
  } catch {
    throw new OciError('NAME_INVALID', 'the upstream name is not valid');
  }
  const kind = prefix === PEER_MANIFEST_PREFIX ? 'manifest' : 'blob';
  return { kind, upstream, name: parseRepositoryName(parts.slice(1, -1).join('/')), digest: parseDigest(parts.at(-1)!) };
}

/**
 * `Bearer <ms>.<hex HMAC-SHA256(secret, "<ms>\n<path>")>`: the secret itself never crosses the
 * wire (peers may talk plain HTTP inside the cluster), and a signature opens one path for minutes.
 */
export function peerAuthorization(secret: string, path: string, now: number): string {
  return `Bearer ${now}.${mac(secret, now, path)}`;
}

/** Constant time in the signature; false for anything missing, malformed, stale or wrong. */
export function verifyPeerAuthorization(secret: string, path: string, header: string | undefined, now: number): boolean {
  const m = /^Bearer (\d{1,15})\.([0-9a-f]{64})$/.exec(header ?? '');
  if (m === null) return false;
  const at = Number(m[1]);
  if (Math.abs(now - at) > MAX_SKEW_MS) return false;
  return timingSafeEqual(Buffer.from(m[2]!, 'hex'), Buffer.from(mac(secret, at, path), 'hex'));
}

function mac(secret: string, at: number, path: string): string {
  return createHmac('sha256', secret).update(`${at}\n${path}`).digest('hex');
}
