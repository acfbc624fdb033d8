import type { Logger } from 'pino';
import type { Tag } from '../oci/index.js';
import type { TagRecord } from '../storage/index.js';
import { errorSummary } from '../observability/index.js';
import type { TagOrigin } from './ingest.js';
import type { MirrorMetadata, RepoRef } from './types.js';

const PULL_TOUCH_MS = 60_000;

/**
 * Records when a tag was last pulled by a client, or resolved by a sync run (what `cache ls` shows
 * and `cache prune --older-than` reads), at most once per PULL_TOUCH_MS per tag and origin so a
 * busy tag costs one metadata write a minute, not one per pull. A failed write only loses that
 * timestamp: the pull itself goes on. An import never comes this way.
 */
export async function touchTag(
  deps: { readonly metadata: MirrorMetadata; readonly now: () => number; readonly logger: Logger },
  ref: RepoRef,
  tag: Tag,
  record: TagRecord,
  origin: TagOrigin,
): Promise<void> {
  const { metadata, now, logger } = deps;
  const field = origin === 'sync' ? 'syncedAt' : 'pulledAt';
  if (now() - (record[field] ?? -Infinity) < PULL_TOUCH_MS) return;
  try {
    await metadata.setTag(ref.upstream, ref.name, tag, { ...record, [field]: now() });
  } catch (err) {
    logger.debug({ upstream: ref.upstream, repository: ref.name, tag, error: errorSummary(err) }, 'recording the pull time failed');
  }
}
