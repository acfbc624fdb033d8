import { CronExpressionParser } from 'cron-parser';
import semver from 'semver';
import { ConfigError } from './errors.js';
import { boolean, integer, object, onlyKeys, type Json } from './fields.js';
import { parseRepository } from './repositories.js';
import type { UpstreamConfig } from './types.js';
import { parseDuration } from './units.js';

/** Which tags of a repository an entry mirrors; every present filter applies (see README). */
export interface TagFilter {
  /** Names mirrored whatever the other filters say; when alone, no tag list is read. */
  readonly exact: readonly string[];
  readonly include: RegExp | undefined;
  readonly exclude: RegExp | undefined;
  /** A semver range such as ">=1.25 <2"; tags that are not versions never match it. */
  readonly semver: string | undefined;
  /** Keep only the N highest versions among the tags the other filters kept. */
  readonly latest: number | undefined;
}

export type Schedule = { readonly kind: 'interval'; readonly ms: number } | { readonly kind: 'cron'; readonly expression: string };

export interface SyncEntry {
  /** Unique; the `job` label in metrics and /api/status. */
  readonly name: string;
  readonly upstream: string;
  /** A repository name, or a glob (grammar in oci/repository-glob.ts) expanded via the catalog. */
  readonly repository: string;
  readonly isPattern: boolean;
  readonly tags: TagFilter;
  /** "os/arch[/variant]"; empty: every platform. */
  readonly platforms: readonly string[];
  /** undefined: the entry runs only from `regmirror sync` or `runOnStart`. */
  readonly schedule: Schedule | undefined;
  readonly prune: boolean;
  readonly runOnStart: boolean;
  /**
   * `referrers`: also mirror each image's referrers (signatures, SBOMs, attestations), all of them
   * (true) or those of these artifact types; false: none.
   */
  readonly referrers: boolean | readonly string[];
}

export interface SyncConfig {
  readonly entries: readonly SyncEntry[];
  /** Blob downloads at once across every sync job. */
  readonly concurrency: number;
  /** Stop a run when upstream's ratelimit-remaining is at or below this, leaving it to client pulls. */
  readonly rateLimitReserve: number;
  /** Each scheduled run starts up to this much later, at random, so replicas do not stampede upstream. */
  readonly jitterMs: number;
  /** Retries of a rate-limited or unavailable upstream call, with backoff. */
  readonly retries: number;
  /** A longer Retry-After than this fails the image instead of stalling the job. */
  readonly maxRetryAfterMs: number;
}

const SYNC_KEYS = ['entries', 'concurrency', 'rateLimitReserve', 'jitter', 'retries', 'maxRetryAfter'];
const ENTRY_KEYS = ['name', 'upstream', 'repository', 'tags', 'platforms', 'schedule', 'prune', 'runOnStart', 'referrers'];
const TAG_KEYS = ['exact', 'include', 'exclude', 'semver', 'latest'];
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;

export const NO_SYNC: SyncConfig = { entries: [], concurrency: 4, rateLimitReserve: 10, jitterMs: 60_000, retries: 3, maxRetryAfterMs: 300_000 };

/** `sync` is a list of entries, or an object with `entries` and the settings shared by every job. */
export function parseSyncConfig(raw: unknown, upstreams: ReadonlyMap<string, UpstreamConfig>, defaultUpstream: string): SyncConfig {
  if (raw === undefined) return NO_SYNC;
  const root: Json = Array.isArray(raw) ? { entries: raw } : object(raw, 'sync');
  onlyKeys(root, SYNC_KEYS, 'sync');
  const entriesRaw = root['entries'] ?? [];
  if (!Array.isArray(entriesRaw)) throw new ConfigError('sync.entries', 'must be a list of entries');
  const entries = entriesRaw.map((e, i) => parseEntry(e, `sync.entries[${i}]`, upstreams, defaultUpstream));
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    if (seen.has(e.name)) throw new ConfigError(`sync.entries[${i}].name`, `"${e.name}" names another entry too; give each entry its own name`);
    seen.add(e.name);
  });
  const jitterMs = parseDuration(root['jitter'] ?? '1m');
  if (jitterMs === undefined) throw new ConfigError('sync.jitter', 'must be a duration such as "1m" or "0"');
  const maxRetryAfterMs = parseDuration(root['maxRetryAfter'] ?? '5m');
  if (maxRetryAfterMs === undefined) throw new ConfigError('sync.maxRetryAfter', 'must be a duration such as "5m"');
  return {
    entries,
    concurrency: integer(root['concurrency'] ?? NO_SYNC.concurrency, 'sync.concurrency', 1, 256),
    rateLimitReserve: integer(root['rateLimitReserve'] ?? NO_SYNC.rateLimitReserve, 'sync.rateLimitReserve', 0, 1_000_000),
    jitterMs,
    retries: integer(root['retries'] ?? NO_SYNC.retries, 'sync.retries', 0, 10),
    maxRetryAfterMs,
  };
}

function parseEntry(value: unknown, key: string, upstreams: ReadonlyMap<string, UpstreamConfig>, defaultUpstream: string): SyncEntry {
  const e = object(value, key);
  onlyKeys(e, ENTRY_KEYS, key);
  const upstreamName = e['upstream'] ?? defaultUpstream;
  const upstream = typeof upstreamName === 'string' ? upstreams.get(upstreamName) : undefined;
  if (upstream === undefined) {
    throw new ConfigError(`${key}.upstream`, `${JSON.stringify(upstreamName)} is not a configured upstream (${[...upstreams.keys()].join(', ')})`);
  }
  // Refused rather than skipped: the entry could never run, and a prune would read an empty upstream
  // tag list as "every imported tag is gone". `regmirror config check` catches it before a deploy.
  if (upstream.offline) {
    throw new ConfigError(`${key}.upstream`, `${upstream.name} is offline and never contacted, so this entry could never run: keep it on the connected side, and pin what was carried in with storage.pin`);
  }
  const { repository, isPattern } = parseRepository(e['repository'], `${key}.repository`, upstream);
  const name = e['name'] ?? `${upstream.name}/${repository}`;
  if (typeof name !== 'string' || !/^[\w./:*?-]{1,200}$/.test(name)) throw new ConfigError(`${key}.name`, 'must be 1-200 letters, digits or . _ - / : * ?');
  const at = `${key} (${name})`;
  return {
    name,
    upstream: upstream.name,
    repository,
    isPattern,
    tags: parseTags(e['tags'] ?? ['latest'], `${at}.tags`),
    platforms: parsePlatforms(e['platforms'] ?? [], `${at}.platforms`),
    schedule: e['schedule'] === undefined ? undefined : parseSchedule(e['schedule'], `${at}.schedule`),
    prune: boolean(e['prune'] ?? false, `${at}.prune`),
    runOnStart: boolean(e['runOnStart'] ?? false, `${at}.runOnStart`),
    referrers: parseReferrers(e['referrers'] ?? false, `${at}.referrers`),
  };
}

function parseReferrers(value: unknown, key: string): boolean | string[] {
  if (typeof value === 'boolean') return value;
  // A media type: type "/" subtype, with the + suffixes and dots artifact types use.
  if (Array.isArray(value) && value.length > 0 && value.every((t): t is string => typeof t === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(t))) return value;
  throw new ConfigError(key, 'must be true, false, or a list of artifact types such as ["application/vnd.dev.cosign.artifact.sig.v1+json"]');
}

function parseTags(value: unknown, key: string): TagFilter {
  const t: Json = Array.isArray(value) ? { exact: value } : object(value, key);
  onlyKeys(t, TAG_KEYS, key);
  const exactRaw = t['exact'] ?? [];
  if (!Array.isArray(exactRaw) || !exactRaw.every((x): x is string => typeof x === 'string' && /^[\w][\w.-]{0,127}$/.test(x))) {
    throw new ConfigError(`${key}.exact`, 'must be a list of tag names');
  }
  const range = t['semver'];
  if (range !== undefined && (typeof range !== 'string' || semver.validRange(range) === null)) {
    throw new ConfigError(`${key}.semver`, `${JSON.stringify(range)} is not a semver range such as ">=1.25 <2"`);
  }
  const latest = t['latest'] === undefined ? undefined : integer(t['latest'], `${key}.latest`, 1, 10_000);
  const filter = { exact: exactRaw, include: regex(t['include'], `${key}.include`), exclude: regex(t['exclude'], `${key}.exclude`), semver: range, latest };
  if (filter.exact.length === 0 && filter.include === undefined && filter.exclude === undefined && range === undefined && latest === undefined) {
    throw new ConfigError(key, 'selects nothing: give exact tags, include/exclude, semver or latest');
  }
  return filter;
}

function regex(value: unknown, key: string): RegExp | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new ConfigError(key, 'must be a regular expression string');
  try {
    return new RegExp(value);
  } catch (err) {
    throw new ConfigError(key, `invalid regular expression: ${(err as Error).message}`);
  }
}

function parsePlatforms(value: unknown, key: string): string[] {
  if (!Array.isArray(value)) throw new ConfigError(key, 'must be a list such as ["linux/amd64", "linux/arm64"]');
  for (const p of value) {
    if (typeof p !== 'string' || !PLATFORM.test(p)) throw new ConfigError(key, `${JSON.stringify(p)} is not "os/architecture[/variant]", e.g. "linux/arm64/v8"`);
  }
  return value as string[];
}

export function parseSchedule(value: unknown, key: string): Schedule {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(key, 'must be a cron expression ("0 3 * * *") or an interval ("6h")');
  const ms = parseDuration(value);
  if (ms !== undefined) {
    if (ms < 1000) throw new ConfigError(key, 'an interval must be at least "1s"');
    return { kind: 'interval', ms };
  }
  try {
    CronExpressionParser.parse(value, { tz: 'UTC' });
  } catch (err) {
    throw new ConfigError(key, `${JSON.stringify(value)} is neither an interval ("6h") nor a cron expression: ${(err as Error).message}`);
  }
  return { kind: 'cron', expression: value.trim() };
}
