import { notFound, type RepoRef, type SyncMirror } from '../mirror/index.js';
import { parseManifest, parseTag } from '../oci/index.js';
import type { ImageResult } from './types.js';
import { planImage, type ManifestLoader } from './walk.js';

/**
 * What a run would do for one tag, without changing the cache: the tag is resolved with a HEAD (no
 * pull counted on Docker Hub-style limits); manifests held here are read from the store and only the
 * ones not held are fetched (a GET, which such limits may count), never stored; blobs are only
 * looked up here. `fetch` wraps each upstream call (retries). A tag upstream does not have is
 * `not-found`; any other upstream failure is thrown (the upstream is down for every tag alike).
 */
export async function probeImage(
  mirror: SyncMirror,
  ref: RepoRef,
  tag: string,
  platforms: readonly string[],
  fetch: <T>(task: () => Promise<T>) => Promise<T>,
): Promise<ImageResult> {
  const base = { repository: ref.name, tag, manifests: 0, blobs: 0, bytes: 0, downloaded: 0 };
  let digest;
  try {
    digest = await fetch(() => mirror.upstreamTag(ref, parseTag(tag)));
  } catch (err) {
    if (!notFound(err)) throw err;
    return { ...base, digest: null, status: 'not-found', error: `${ref.upstream}/${ref.name}:${tag} not found upstream (check the repository name and the tag)` };
  }
  let unheldManifests = 0;
  const load: ManifestLoader = async (r) => {
    const at = r.kind === 'digest' ? r.digest : digest;
    const m = await fetch(() => mirror.peekManifest(ref, at));
    if (!m.held) unheldManifests++;
    return { digest: at, parsed: parseManifest(m.bytes, m.mediaType) };
  };
  const plan = await planImage(load, { kind: 'digest', digest }, platforms);
  const held = await Promise.all(plan.blobs.map((b) => mirror.holdsBlob(b.digest)));
  const missing = plan.blobs.filter((_, i) => held[i] !== true);
  const wouldDownload = { blobs: missing.length, bytes: missing.reduce((n, b) => n + b.size, 0) };
  const current = (await mirror.cachedTag(ref, tag)) === digest && unheldManifests === 0 && missing.length === 0;
  return {
    ...base,
    digest,
    status: current ? 'up-to-date' : 'planned',
    manifests: plan.manifests,
    blobs: plan.blobs.length,
    bytes: plan.blobs.reduce((n, b) => n + b.size, 0),
    wouldDownload,
  };
}
