import type { Logger } from 'pino';
import type { SyncConfig, SyncEntry } from '../config/index.js';
import type { Mirror, RepoRef } from '../mirror/index.js';
import { errorSummary } from '../observability/index.js';
import { parseRepositoryName, parseTag } from '../oci/index.js';
import type { Limiter } from './limiter.js';
import { globToRegExp } from './patterns.js';
import { ReserveReachedError, withRetry, type RateLimitLedger, type RetryPolicy } from './rate-limit.js';
import { onlyExact, selectTags } from './tags.js';
import type { EntryResult, ImageResult, SyncProgress } from './types.js';
import { planImage } from './walk.js';

export interface JobDeps {
  readonly mirror: Mirror;
  /** Shared by every job: the bound on blob downloads at once. */
  readonly limiter: Limiter;
  readonly ledger: RateLimitLedger;
  readonly config: SyncConfig;
  readonly retry: RetryPolicy;
  readonly logger: Logger;
  readonly now: () => number;
}

export interface JobOptions {
  readonly dryRun: boolean;
  readonly progress?: SyncProgress | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Pages read at most from a tag list or catalog (1000 names each). */
const MAX_PAGES = 100;
const PAGE = 1000;

/** One run of one entry. Never throws: every failure ends up in the result. */
export async function runJob(entry: SyncEntry, deps: JobDeps, options: JobOptions): Promise<EntryResult> {
  const startedAt = deps.now();
  const images: ImageResult[] = [];
  const errors: string[] = [];
  const pruned: string[] = [];
  let stoppedByRateLimit: string | null = null;
  const log = deps.logger.child({ job: entry.name, upstream: entry.upstream });
  try {
    const repositories = entry.isPattern ? await expand(entry, deps, options) : [entry.repository];
    if (entry.isPattern && repositories.length === 0) errors.push(`no repository on ${entry.upstream} matches ${entry.repository}`);
    for (const repository of repositories) {
      options.signal?.throwIfAborted();
      const ref: RepoRef = { upstream: entry.upstream, name: parseRepositoryName(repository) };
      let tags: readonly string[] = entry.tags.exact;
      if (!onlyExact(entry.tags) || entry.prune) {
        const upstreamTags = await listAll((last) => deps.mirror.tags(ref, { n: PAGE, last }, options.signal), 'tags', deps.retry, options.signal);
        tags = selectTags(entry.tags, upstreamTags);
        if (entry.prune) pruned.push(...(await prune(ref, upstreamTags, deps, options.dryRun)).map((t) => `${repository}:${t}`));
      }
      for (const tag of tags) {
        const image = options.dryRun ? await planned(ref, tag, deps) : await syncImage(entry, ref, tag, deps, options);
        images.push(image);
        if (image.error !== undefined) errors.push(`${repository}:${tag}: ${image.error}`);
      }
    }
  } catch (err) {
    if (err instanceof ReserveReachedError) {
      stoppedByRateLimit = err.message;
      log.warn({ remaining: err.remaining, reserve: err.reserve }, 'sync stopped early to leave the upstream rate limit to client pulls');
    }
    errors.push(err instanceof Error ? err.message : String(err));
  }
  const result: EntryResult = {
    job: entry.name,
    upstream: entry.upstream,
    repository: entry.repository,
    dryRun: options.dryRun,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(deps.now()).toISOString(),
    result: errors.length === 0 ? 'success' : 'failure',
    images,
    bytesDownloaded: images.reduce((n, i) => n + i.downloaded, 0),
    errors,
    pruned,
    stoppedByRateLimit,
  };
  log[errors.length === 0 ? 'info' : 'warn'](
    { result: result.result, images: images.filter((i) => i.status === 'synced').length, bytes: result.bytesDownloaded, errors: errors.length, pruned: pruned.length, dryRun: options.dryRun },
    'sync run finished',
  );
  return result;
}

async function syncImage(entry: SyncEntry, ref: RepoRef, tag: string, deps: JobDeps, options: JobOptions): Promise<ImageResult> {
  const image = `${ref.name}:${tag}`;
  const { signal, progress } = options;
  const fetch = <T>(task: () => Promise<T>): Promise<T> => {
    const remaining = deps.ledger.remaining(ref.upstream);
    if (remaining !== undefined && remaining <= deps.config.rateLimitReserve) throw new ReserveReachedError(ref.upstream, remaining, deps.config.rateLimitReserve);
    return withRetry(task, deps.retry, signal);
  };
  let digest: string | null = null;
  let manifests = 0;
  let blobs = 0;
  let bytes = 0;
  let downloaded = 0;
  try {
    const plan = await planImage(deps.mirror, ref, { kind: 'tag', tag: parseTag(tag) }, entry.platforms, fetch);
    ({ digest, manifests } = plan);
    blobs = plan.blobs.length;
    bytes = plan.blobs.reduce((n, b) => n + b.size, 0);
    progress?.imageStarted(entry.name, image, blobs, bytes);
    const settled = await Promise.allSettled(
      plan.blobs.map((b) =>
        deps.limiter.run(async () => {
          signal?.throwIfAborted();
          const got = await withRetry(() => deps.mirror.ensureBlob(ref, b.digest, signal), deps.retry, signal);
          downloaded += got.downloaded;
          progress?.blobDone(entry.name, image, got.size);
        }),
      ),
    );
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    progress?.imageFinished(entry.name, image, true);
    return { repository: ref.name, tag, digest, status: 'synced', manifests, blobs, bytes, downloaded };
  } catch (err) {
    if (err instanceof ReserveReachedError || signal?.aborted) throw err;
    progress?.imageFinished(entry.name, image, false);
    deps.logger.warn({ job: entry.name, upstream: ref.upstream, repository: ref.name, tag, error: errorSummary(err) }, 'sync of an image failed');
    return { repository: ref.name, tag, digest, status: 'failed', manifests, blobs, bytes, downloaded, error: err instanceof Error ? err.message : String(err) };
  }
}

/** A dry run reads only what is already known: no manifest or blob is fetched. */
async function planned(ref: RepoRef, tag: string, deps: JobDeps): Promise<ImageResult> {
  const digest = await deps.mirror.cachedTag(ref, tag);
  return { repository: ref.name, tag, digest: digest ?? null, status: 'planned', manifests: 0, blobs: 0, bytes: 0, downloaded: 0 };
}

/** Local tags upstream no longer lists. Only ever called with a complete tag list. */
async function prune(ref: RepoRef, upstreamTags: readonly string[], deps: JobDeps, dryRun: boolean): Promise<string[]> {
  const keep = new Set(upstreamTags);
  const gone = (await deps.mirror.localTags(ref)).filter((t) => !keep.has(t));
  if (!dryRun) for (const t of gone) await deps.mirror.forgetTag(ref, t);
  if (gone.length > 0) deps.logger.info({ upstream: ref.upstream, repository: ref.name, tags: gone, dryRun }, 'pruned tags that disappeared upstream');
  return gone;
}

async function expand(entry: SyncEntry, deps: JobDeps, options: JobOptions): Promise<string[]> {
  let names: string[];
  try {
    names = await listAll((last) => deps.mirror.catalog(entry.upstream, { n: PAGE, last }, options.signal), 'repositories', deps.retry, options.signal);
  } catch (err) {
    throw new Error(`repository pattern ${entry.repository} needs ${entry.upstream}'s catalog, which failed (${err instanceof Error ? err.message : String(err)}); list repositories by name instead`);
  }
  const re = globToRegExp(entry.repository);
  return names.filter((n) => re.test(n)).sort();
}

/** Every name of a paginated list (`tags` or `repositories` in the JSON body), following Link. */
async function listAll(
  page: (last: string | undefined) => Promise<{ body: Buffer; next: { last: string | undefined } | undefined }>,
  field: 'tags' | 'repositories',
  retry: RetryPolicy,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const out: string[] = [];
  let last: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const reply = await withRetry(() => page(last), retry, signal);
    const parsed = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown> | null;
    const list = parsed?.[field];
    // distribution answers `"tags": null` for a repository without tags.
    if (list !== null && list !== undefined && (!Array.isArray(list) || !list.every((x): x is string => typeof x === 'string'))) {
      throw new Error(`upstream sent a ${field} list that is not a list of names`);
    }
    out.push(...(list ?? []));
    if (reply.next?.last === undefined) return out;
    last = reply.next.last;
  }
  throw new Error(`more than ${MAX_PAGES * PAGE} ${field}; narrow the entry`);
}
