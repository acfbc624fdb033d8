import type { Logger } from 'pino';
import type { SyncConfig, SyncEntry } from '../config/index.js';
import { notFound, type RepoRef, type SyncMirror } from '../mirror/index.js';
import { errorSummary } from '../observability/index.js';
import { parseRepositoryName, parseTag } from '../oci/index.js';
import { entryRepositories } from './entry-patterns.js';
import type { Limiter } from '../concurrency/index.js';
import { ReserveReachedError, withRetry, type RateLimitLedger, type RetryPolicy } from './rate-limit.js';
import { probeImage } from './dry-run.js';
import { describeFilter, onlyExact, selectTags } from './tags.js';
import type { EntryResult, ImageResult, NoteLevel, SyncProgress } from './types.js';
import { planImage, pullLoader, type ImagePlan } from './walk.js';
import { planReferrers } from './referrers.js';

export interface JobDeps {
  readonly mirror: SyncMirror;
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
/** Images of one entry whose blobs may be downloading while the next one is planned. */
const IMAGE_WINDOW = 8;

/** One run of one entry. Never throws: every failure ends up in the result. */
export async function runJob(entry: SyncEntry, shared: JobDeps, options: JobOptions): Promise<EntryResult> {
  const note = (level: NoteLevel, message: string) => options.progress?.note?.(entry.name, level, message);
  // The same policy, with this job named in its retry log lines (and on the operator's terminal).
  const onRetry: NonNullable<JobDeps['retry']['onRetry']> = (info) => {
    shared.retry.onRetry?.({ ...info, job: entry.name });
    note('warning', `upstream ${info.retry.upstream} ${info.retry.reason}; retry ${info.attempt} in ${Math.round(info.delayMs / 1000)}s`);
  };
  const deps: JobDeps = { ...shared, retry: { ...shared.retry, onRetry } };
  const startedAt = deps.now();
  const images: ImageResult[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  const pruned: string[] = [];
  let stoppedByRateLimit: string | null = null;
  const log = deps.logger.child({ job: entry.name, upstream: entry.upstream });
  try {
    const repositories = await entryRepositories(entry, () => catalog(entry, deps, options));
    if (entry.isPattern && repositories.length === 0) {
      errors.push(`no repository on ${entry.upstream} matches ${entry.repository}`);
      note('error', `no repository on ${entry.upstream} matches ${entry.repository}`);
    }
    for (const repository of repositories) {
      options.signal?.throwIfAborted();
      const ref: RepoRef = { upstream: entry.upstream, name: parseRepositoryName(repository) };
      const pending: Promise<ImageResult>[] = [];
      const collect = (image: ImageResult): void => {
        images.push(image);
        if (image.error === undefined) return;
        errors.push(`${repository}:${image.tag}: ${image.error}`);
        note('error', `${repository}:${image.tag}: ${image.error}`);
      };
      let tags: readonly string[] = entry.tags.exact;
      if (!onlyExact(entry.tags) || entry.prune) {
        const upstreamTags = await tagList(ref, deps, options);
        tags = selectTags(entry.tags, upstreamTags);
        // Named tags upstream lacks are a mistake to show, not something to drop quietly.
        for (const tag of entry.tags.exact.filter((t) => !upstreamTags.includes(t))) {
          collect({ repository: ref.name, tag, digest: null, status: options.dryRun ? 'not-found' : 'failed', manifests: 0, blobs: 0, bytes: 0, downloaded: 0, error: `tag ${tag} not found upstream` });
        }
        if (tags.length === 0 && !onlyExact(entry.tags)) {
          const warning = `no tag of ${repository} matches ${describeFilter(entry.tags)} (${upstreamTags.length} tags upstream)`;
          warnings.push(warning);
          note('warning', warning);
          log.warn({ repository, upstreamTags: upstreamTags.length }, 'the tag filter matched no upstream tag');
        }
        if (entry.prune) pruned.push(...(await prune(ref, upstreamTags, deps, options.dryRun)).map((t) => `${repository}:${t}`));
      }
      // Manifests are planned one tag at a time (the reserve check stays exact); the blobs of up to
      // `window` images download meanwhile, so small images still fill the shared limiter.
      try {
        for (const tag of tags) {
          if (options.dryRun) {
            collect(await probeImage(deps.mirror, ref, tag, entry.platforms, (task) => withRetry(task, deps.retry, options.signal)));
            continue;
          }
          options.signal?.throwIfAborted();
          pending.push((await startImage(entry, ref, tag, deps, options)).done);
          const oldest = pending.length >= IMAGE_WINDOW ? pending.shift() : undefined;
          if (oldest !== undefined) collect(await oldest);
        }
      } finally {
        for (const p of pending) collect(await p);
      }
    }
  } catch (err) {
    if (err instanceof ReserveReachedError) {
      stoppedByRateLimit = err.message;
      log.warn({ remaining: err.remaining, reserve: err.reserve }, 'sync stopped early to leave the upstream rate limit to client pulls');
    }
    const message = err instanceof Error ? err.message : String(err);
    errors.push(message);
    note('error', message);
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
    warnings,
    pruned,
    stoppedByRateLimit,
  };
  log[errors.length === 0 ? 'info' : 'warn'](
    { result: result.result, images: images.filter((i) => i.status === 'synced').length, bytes: result.bytesDownloaded, errors: errors.length, pruned: pruned.length, dryRun: options.dryRun },
    'sync run finished',
  );
  return result;
}

/**
 * Plans an image (its manifests, through the reserve check) and starts its blobs. Resolves once
 * planned; `done` never rejects. A reserve stop or shutdown during planning throws, to end the job.
 */
async function startImage(entry: SyncEntry, ref: RepoRef, tag: string, deps: JobDeps, options: JobOptions): Promise<{ done: Promise<ImageResult> }> {
  const image = `${ref.name}:${tag}`;
  const { signal, progress } = options;
  const fetch = <T>(task: () => Promise<T>): Promise<T> => {
    const remaining = deps.ledger.remaining(ref.upstream);
    if (remaining !== undefined && remaining <= deps.config.rateLimitReserve) throw new ReserveReachedError(ref.upstream, remaining, deps.config.rateLimitReserve);
    return withRetry(task, deps.retry, signal);
  };
  const failed = (err: unknown, partial: Partial<ImageResult> = {}): ImageResult => {
    progress?.imageFinished(entry.name, image, false);
    deps.logger.warn({ job: entry.name, upstream: ref.upstream, repository: ref.name, tag, error: errorSummary(err) }, 'sync of an image failed');
    const error = err instanceof Error ? err.message : String(err);
    return { repository: ref.name, tag, digest: null, manifests: 0, blobs: 0, bytes: 0, downloaded: 0, ...partial, status: 'failed', error };
  };
  let plan: ImagePlan;
  try {
    plan = await planImage(pullLoader(deps.mirror, ref, fetch), { kind: 'tag', tag: parseTag(tag) }, entry.platforms);
  } catch (err) {
    if (err instanceof ReserveReachedError || signal?.aborted) throw err;
    return { done: Promise.resolve(failed(err)) };
  }
  if (entry.referrers !== false) {
    try {
      const extra = await planReferrers(deps.mirror, ref, plan.subjects, entry.referrers, fetch);
      plan = withReferrers(plan, extra);
    } catch (err) {
      if (err instanceof ReserveReachedError || signal?.aborted) throw err;
      return { done: Promise.resolve(failed(err, { digest: plan.digest })) };
    }
  }
  const { digest, manifests } = plan;
  const blobs = plan.blobs.length;
  const bytes = plan.blobs.reduce((n, b) => n + b.size, 0);
  let downloaded = 0;
  progress?.imageStarted(entry.name, image, blobs, bytes);
  const done = (async (): Promise<ImageResult> => {
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
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected !== undefined) return failed(rejected.reason, { digest, manifests, blobs, bytes, downloaded });
    progress?.imageFinished(entry.name, image, true);
    return { repository: ref.name, tag, digest, status: 'synced', manifests, blobs, bytes, downloaded };
  })();
  return { done };
}

/** The image's plan with its referrers' manifests and blobs added (each blob once). */
function withReferrers(plan: ImagePlan, referrers: readonly ImagePlan[]): ImagePlan {
  const blobs = new Map(plan.blobs.map((b) => [b.digest, b]));
  for (const r of referrers) for (const b of r.blobs) blobs.set(b.digest, b);
  return { ...plan, manifests: plan.manifests + referrers.reduce((n, r) => n + r.manifests, 0), blobs: [...blobs.values()] };
}

/** Upstream's tags of a repository; a repository upstream does not have is said so in words. */
async function tagList(ref: RepoRef, deps: JobDeps, options: JobOptions): Promise<string[]> {
  try {
    return await listAll((last) => deps.mirror.tags(ref, { n: PAGE, last }, options.signal), 'tags', deps.retry, options.signal);
  } catch (err) {
    if (notFound(err)) throw new Error(`repository ${ref.name} not found on ${ref.upstream} (check its name)`);
    throw err;
  }
}

/** Local tags upstream no longer lists. Only ever called with a complete tag list. */
async function prune(ref: RepoRef, upstreamTags: readonly string[], deps: JobDeps, dryRun: boolean): Promise<string[]> {
  const keep = new Set(upstreamTags);
  const gone = (await deps.mirror.localTags(ref)).filter((t) => !keep.has(t));
  if (!dryRun) for (const t of gone) await deps.mirror.forgetTag(ref, t);
  if (gone.length > 0) deps.logger.info({ upstream: ref.upstream, repository: ref.name, tags: gone, dryRun }, 'pruned tags that disappeared upstream');
  return gone;
}

async function catalog(entry: SyncEntry, deps: JobDeps, options: JobOptions): Promise<string[]> {
  try {
    return await listAll((last) => deps.mirror.catalog(entry.upstream, { n: PAGE, last }, options.signal), 'repositories', deps.retry, options.signal);
  } catch (err) {
    throw new Error(`repository pattern ${entry.repository} needs ${entry.upstream}'s catalog, which failed (${err instanceof Error ? err.message : String(err)}); list repositories by name instead`);
  }
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
