import semver from 'semver';
import type { TagFilter } from '../config/index.js';

/** A tag read as a version: "1.25", "v1.25.3" and "1.25.3-rc.1" are; "1.25-alpine" and "latest" are not. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  const exact = semver.parse(tag, { loose: true });
  if (exact !== null) return exact;
  // Registries tag "1" and "1.25" for the newest patch; read them as 1.0.0 and 1.25.0.
  const m = /^v?(\d+)(?:\.(\d+))?$/.exec(tag);
  return m === null ? undefined : (semver.parse(`${m[1]}.${m[2] ?? '0'}.0`) ?? undefined);
}

/** Only exact names: no tag list is needed to know what to mirror. */
export function onlyExact(filter: TagFilter): boolean {
  return filter.include === undefined && filter.exclude === undefined && filter.semver === undefined && filter.latest === undefined;
}

/**
 * The tags an entry mirrors out of the upstream's list. include/exclude/semver narrow the list,
 * `latest` keeps the N highest versions of what is left, and exact names are added back (if
 * upstream has them) whatever the other filters said.
 */
export function selectTags(filter: TagFilter, upstreamTags: readonly string[]): string[] {
  const available = new Set(upstreamTags);
  let picked = onlyExact(filter) ? [] : [...available];
  if (filter.include !== undefined) picked = picked.filter((t) => filter.include?.test(t));
  if (filter.exclude !== undefined) picked = picked.filter((t) => !filter.exclude?.test(t));
  if (filter.semver !== undefined) {
    const range = filter.semver;
    picked = picked.filter((t) => {
      const v = tagVersion(t);
      return v !== undefined && semver.satisfies(v, range);
    });
  }
  if (filter.latest !== undefined) {
    const versions = picked.flatMap((t) => {
      const v = tagVersion(t);
      return v === undefined ? [] : [{ t, v }];
    });
    // Equal versions ("1.25" and "1.25.0"): the longer spelling first, then by name, so the pick is stable.
    versions.sort((a, b) => semver.rcompare(a.v, b.v) || b.t.length - a.t.length || a.t.localeCompare(b.t));
    picked = versions.slice(0, filter.latest).map((x) => x.t);
  }
  const out = new Set(picked);
  for (const t of filter.exact) if (available.has(t)) out.add(t);
  return [...out].sort();
}

/** The filter in the config's words, for a warning that it matched nothing. */
export function describeFilter(filter: TagFilter): string {
  const parts: string[] = [];
  if (filter.include !== undefined) parts.push(`include ${filter.include.source}`);
  if (filter.exclude !== undefined) parts.push(`exclude ${filter.exclude.source}`);
  if (filter.semver !== undefined) parts.push(`semver ${filter.semver}`);
  if (filter.latest !== undefined) parts.push(`latest ${filter.latest}`);
  return `the tag filter (${parts.join(', ')})`;
}
