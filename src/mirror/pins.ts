import { RepositoryGlob } from '../oci/index.js';
import type { RepositoryPattern } from '../config/index.js';

/**
 * Which repositories are pinned: their manifests and blobs are never evicted. Built from
 * `storage.pin`; the sync job's repositories join through `with()`, so one decision covers both.
 */
export class PinSet {
  readonly patterns: readonly RepositoryPattern[];
  /** upstream → globs: a lookup checks only the patterns of its own upstream. */
  readonly #byUpstream = new Map<string, RepositoryGlob[]>();

  constructor(patterns: readonly RepositoryPattern[]) {
    this.patterns = [...patterns];
    for (const p of this.patterns) {
      const list = this.#byUpstream.get(p.upstream) ?? [];
      list.push(new RepositoryGlob(p.repository));
      this.#byUpstream.set(p.upstream, list);
    }
  }

  /** A new set with more patterns (e.g. the repositories listed for sync). */
  with(more: readonly RepositoryPattern[]): PinSet {
    return new PinSet([...this.patterns, ...more]);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  matches(upstream: string, repository: string): boolean {
    return this.#byUpstream.get(upstream)?.some((g) => g.matches(repository)) ?? false;
  }

  /** `key` is `<upstream>/<repository>`, as the cache index records referencing repositories. */
  matchesKey(key: string): boolean {
    const slash = key.indexOf('/');
    return slash > 0 && this.matches(key.slice(0, slash), key.slice(slash + 1));
  }
}
