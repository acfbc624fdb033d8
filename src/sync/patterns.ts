import type { SyncConfig } from '../config/index.js';

/** `--only` globs over entry names and `<upstream>/<repository>`: `*` and `?` stay within a path segment, `**` crosses segments. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

export interface PinPattern {
  readonly upstream: string;
  /** A repository name or glob, in the same grammar as `storage.pin`'s `<upstream>/<repository glob>`. */
  readonly repository: string;
}

/**
 * What the sync config keeps mirrored, for eviction to leave alone: one pattern per entry
 * (duplicates dropped). The lead adds these to the pin list at merge.
 */
export function syncPinPatterns(config: SyncConfig): PinPattern[] {
  const seen = new Map<string, PinPattern>();
  for (const e of config.entries) seen.set(`${e.upstream}/${e.repository}`, { upstream: e.upstream, repository: e.repository });
  return [...seen.values()];
}

/** `--only`: a glob over the entry name or its `<upstream>/<repository>`. */
export function entryMatches(pattern: string | undefined, entry: { name: string; upstream: string; repository: string }): boolean {
  if (pattern === undefined) return true;
  const re = globToRegExp(pattern);
  return re.test(entry.name) || re.test(`${entry.upstream}/${entry.repository}`);
}
