import { COSIGN_FALLBACK_TAGS, fallbackTag, OciError, parseReferrersIndex, parseTag, referrerWanted, type Digest } from '../oci/index.js';
import { notFound, type RepoRef, type SyncMirror } from '../mirror/index.js';
import { planImage, pullLoader, type ImagePlan } from './walk.js';

/**
 * The signatures, SBOMs and attestations of an image's manifests, planned like images (their
 * manifests through the mirror, their blobs to make sure of): the referrers API's list, filtered to
 * `wanted` artifact types; from an upstream without the API, cosign's `sha256-<hex>.sig/.att/.sbom`
 * tags. What an upstream does not have is no error.
 */
export async function planReferrers(
  mirror: SyncMirror,
  ref: RepoRef,
  subjects: readonly Digest[],
  wanted: true | readonly string[],
  fetch: <T>(task: () => Promise<T>) => Promise<T>,
): Promise<ImagePlan[]> {
  const load = pullLoader(mirror, ref, fetch);
  const plans: ImagePlan[] = [];
  const missing = (err: unknown) => notFound(err) || (err instanceof OciError && err.status === 404);
  for (const subject of subjects) {
    let listed: Digest[] | undefined;
    try {
      const reply = await fetch(() => mirror.referrers(ref, subject, undefined, ''));
      listed = parseReferrersIndex(reply.body)
        .filter((d) => referrerWanted(wanted, d.artifactType))
        .map((d) => d.digest as Digest);
    } catch (err) {
      if (!missing(err)) throw err;
    }
    if (listed !== undefined) {
      for (const digest of listed) plans.push(await planImage(load, { kind: 'digest', digest }, []));
      continue;
    }
    for (const { suffix, holds } of COSIGN_FALLBACK_TAGS) {
      if (!referrerWanted(wanted, undefined, holds)) continue;
      try {
        plans.push(await planImage(load, { kind: 'tag', tag: parseTag(fallbackTag(subject, suffix)) }, []));
      } catch (err) {
        if (!missing(err)) throw err;
      }
    }
  }
  return plans;
}
