import { officialName, parseRepositoryName, RepositoryGlob, RepositoryGlobError } from '../oci/index.js';
import { ConfigError } from './errors.js';
import type { RepositoryPattern, UpstreamConfig } from './types.js';

/**
 * `storage.pin`: "<upstream>/<repository glob>". The upstream may be a name or an alias; the
 * glob reads as a sync entry's does (`repositoryGlob`), so "docker.io/alpine" pins what
 * `docker pull alpine` fetched and "docker.io/**" pins every Docker Hub repository.
 */
export function parsePins(value: unknown, upstreams: ReadonlyMap<string, UpstreamConfig>): RepositoryPattern[] {
  return parseRepositoryPatterns(value, 'storage.pin', upstreams);
}

/** A list in the `storage.pin` grammar, wherever it appears (pins, `access.anonymous`, `access.rules[].repositories`). */
export function parseRepositoryPatterns(value: unknown, listKey: string, upstreams: ReadonlyMap<string, UpstreamConfig>): RepositoryPattern[] {
  if (!Array.isArray(value)) throw new ConfigError(listKey, 'must be a list of "<upstream>/<repository pattern>" strings');
  return value.map((entry: unknown, i) => {
    const key = `${listKey}[${i}]`;
    if (typeof entry !== 'string') throw new ConfigError(key, 'must be a string such as "docker.io/library/*"');
    const slash = entry.indexOf('/');
    const host = slash < 0 ? entry : entry.slice(0, slash);
    const upstream = [...upstreams.values()].find((u) => u.name === host || u.aliases.includes(host));
    if (upstream === undefined) {
      throw new ConfigError(key, `"${entry}" must start with a configured upstream (${[...upstreams.keys()].join(', ')}), e.g. "${[...upstreams.keys()][0]}/team/*"`);
    }
    return { upstream: upstream.name, repository: repositoryGlob(slash < 0 ? '' : entry.slice(slash + 1), key, upstream) };
  });
}

/** A sync entry's `repository`: a name, or (holding a `*`) a glob expanded through the catalog. */
export function parseRepository(value: unknown, key: string, upstream: UpstreamConfig): { repository: string; isPattern: boolean } {
  if (typeof value !== 'string' || value === '') throw new ConfigError(key, 'must be a repository name such as "library/nginx", or a pattern such as "myteam/*"');
  if (value.includes('*')) return { repository: repositoryGlob(value, key, upstream), isPattern: true };
  const full = officialName(value, upstream.officialLibrary);
  try {
    parseRepositoryName(full);
  } catch {
    throw new ConfigError(key, `"${value}" is not a valid repository name`);
  }
  return { repository: full, isPattern: false };
}

/** The grammar of oci/repository-glob.ts, with `library/` as a pull applies it. */
function repositoryGlob(text: string, key: string, upstream: UpstreamConfig): string {
  try {
    new RepositoryGlob(text);
  } catch (err) {
    if (err instanceof RepositoryGlobError) throw new ConfigError(key, err.message);
    throw err;
  }
  return officialName(text, upstream.officialLibrary);
}
