import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { digestAlgorithm, digestHex, type Digest } from '../oci/index.js';

/**
 * Every path under a storage directory, in one place, so that a later layout change can be a
 * migration from `v1` instead of a guess spread over many files:
 *
 * ```
 * <root>/
 *   v1/
 *     blobs/<alg>/<2 hex>/<hex>       committed blobs, named by digest (FsBlobStore)
 *     tmp/<hex>.<12 hex>              in-progress writes, renamed into blobs/ on commit; the suffix
 *                                     keeps concurrent writers of one digest apart
 *     tmp/.probe-<12 hex>             StorageHealth's writability probe, deleted at once
 *     cache-index.json                the cache index snapshot: recency, sizes, repository links
 *     cache-index.json.tmp            its next version, renamed over it
 *     pins.json                       repositories pinned by `regmirror import --pin` (beside storage.pin)
 *     metadata.log                    the embedded metadata log (tags, manifests, blob links)
 *     metadata.log.compact            its compacted version, renamed over it
 *     admin.sock                      who holds this storage (serve, or a cache command alone)
 *     admin.sock.recover/             mutex dir for replacing a dead holder's socket
 *     incoming/stdin-<pid>-<12 hex>.tar   a tar \`regmirror import -\` read from stdin, while it runs
 * ```
 *
 * tmp/ lives beside blobs/ on the same filesystem so that commit is one rename.
 */
export interface StorageLayout {
  readonly root: string;
  /** `<root>/v1`: everything this release reads and writes. */
  readonly base: string;
  readonly blobsDir: string;
  readonly tmpDir: string;
  readonly indexSnapshot: string;
  readonly metadataLog: string;
  readonly adminSocket: string;
  readonly pins: string;
  /** Where `import -` spools stdin: on the cache's filesystem, where the room for images is. */
  readonly incomingDir: string;
}

export const LAYOUT_VERSION = 'v1';

export function storageLayout(root: string): StorageLayout {
  const base = path.join(root, LAYOUT_VERSION);
  return {
    root,
    base,
    blobsDir: path.join(base, 'blobs'),
    tmpDir: path.join(base, 'tmp'),
    indexSnapshot: path.join(base, 'cache-index.json'),
    metadataLog: path.join(base, 'metadata.log'),
    adminSocket: path.join(base, 'admin.sock'),
    pins: path.join(base, 'pins.json'),
    incomingDir: path.join(base, 'incoming'),
  };
}

/** The committed file of a blob. */
export function blobPath(layout: StorageLayout, digest: Digest): string {
  const hex = digestHex(digest);
  return path.join(layout.blobsDir, digestAlgorithm(digest), hex.slice(0, 2), hex);
}

/** A fresh temp-file path for a write of `digest`. */
export function newTempPath(layout: StorageLayout, digest: Digest): string {
  return path.join(layout.tmpDir, `${digestHex(digest)}.${randomSuffix()}`);
}

/** A fresh probe-file path: a dot name, which no blob write ever uses. */
export function newProbePath(layout: StorageLayout): string {
  return path.join(layout.tmpDir, `.probe-${randomSuffix()}`);
}

function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}
