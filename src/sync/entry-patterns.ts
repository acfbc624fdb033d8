import type { RepositoryPattern, SyncConfig, SyncEntry } from '../config/index.js';
import { RepositoryFilter, RepositoryGlob, RepositoryGlobError } from '../oci/index.js';

/**
 * The repositories an entry mirrors: its name, or for a pattern the names of the upstream's
 * catalog its glob matches, sorted. The catalog is read only for a pattern.
 */
export async function entryRepositories(entry: Pick<SyncEntry, 'repository' | 'isPattern'>, catalog: () => Promise<readonly string[]>): Promise<string[]> {
  if (!entry.isPattern) return [entry.repository];
  const glob = new RepositoryGlob(entry.repository);
  return (await catalog()).filter((n) => glob.matches(n)).sort();
}

/**
 * The repositories the sync entries keep mirrored, one pattern per entry (duplicates dropped).
 * The app adds them to the PinSet beside `storage.pin`: eviction must not drop what the next
 * scheduled run would only download again.
 */
export function syncPinPatterns(config: SyncConfig): RepositoryPattern[] {
  const seen = new Map<string, RepositoryPattern>();
  for (const e of config.entries) seen.set(`${e.upstream}/${e.repository}`, { upstream: e.upstream, repository: e.repository });
  return [...seen.values()];
}

/**
 * `--only`: the entries named exactly `pattern`, or whose name, repository or
 * `<upstream>/<repository>` the pattern matches as a repository glob (oci/repository-glob.ts).
 * An entry name may hold characters no glob does (uppercase, `?`), so an exact name is taken
 * even when it is not a valid glob; anything else that is not one throws RepositoryGlobError.
 */
export function selectEntries<E extends { name: string; upstream: string; repository: string }>(entries: readonly E[], pattern: string | undefined): E[] {
  if (pattern === undefined) return [...entries];
  let filter: RepositoryFilter | undefined;
  try {
    filter = new RepositoryFilter(pattern);
  } catch (err) {
    if (!(err instanceof RepositoryGlobError) || !entries.some((e) => e.name === pattern)) throw err;
  }
  return entries.filter((e) => e.name === pattern || filter?.glob.matches(e.name) === true || filter?.matches(e.upstream, e.repository) === true);
}
