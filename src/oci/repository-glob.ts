/**
 * Repository globs: the one grammar for `storage.pin`, sync entries, `sync --only` and
 * `cache prune --repo`. Pure.
 *
 * Grammar: segments separated by single `/`. A segment is `**` (zero or more whole segments, so
 * `team/**` includes `team`, and a `**` between `a` and `z` includes `a/z`) or a run of repository-name characters
 * `[a-z0-9._-]` and `*` (any run of characters inside one segment, never across a `/`). Nothing
 * else (no `?`, classes or braces, no `**` inside a segment): the cases that matter are "this
 * repository", "every repository in this namespace" and "everything below here", and a grammar
 * this small cannot surprise an operator.
 */

const SEGMENT = /^[a-z0-9._*-]+$/;
/** A registry host name with an optional port, as upstream names are configured. */
const HOST_SEGMENT = /^[a-z0-9._*:-]+$/;

export class RepositoryGlobError extends Error {
  override readonly name = 'RepositoryGlobError';
}

/** One segment: `**`, or a single-segment matcher. */
type Part = 'any-depth' | RegExp;

export class RepositoryGlob {
  readonly #parts: readonly Part[];

  /**
   * Throws RepositoryGlobError with a one-line reason. `hostFirst`: the first segment may also
   * hold a `:`, because the glob is matched against `<upstream>/<repository>` too, and an
   * upstream is a `host[:port]`.
   */
  constructor(
    readonly source: string,
    options: { readonly hostFirst?: boolean } = {},
  ) {
    if (source === '') throw new RepositoryGlobError('the repository pattern is empty');
    this.#parts = source.split('/').map((segment, i) => {
      if (segment === '') throw new RepositoryGlobError(`empty segment in "${source}" (use single "/" between segments)`);
      if (segment === '**') return 'any-depth';
      if (segment.includes('**')) throw new RepositoryGlobError(`"**" must be a whole segment in "${source}" (e.g. "team/**"; "*" stays inside one segment)`);
      const host = options.hostFirst === true && i === 0;
      if (!(host ? HOST_SEGMENT : SEGMENT).test(segment)) {
        const also = host ? ', ":"' : '';
        throw new RepositoryGlobError(`segment "${segment}" of "${source}" may hold only lowercase letters, digits, ".", "_", "-"${also} and "*"`);
      }
      return new RegExp(`^${segment.split('*').map(escape).join('[^/]*')}$`);
    });
  }

  /** `path`: a repository name, or `<upstream>/<repository>` for a `hostFirst` glob. */
  matches(path: string): boolean {
    return matchFrom(this.#parts, 0, path.split('/'), 0);
  }
}

/**
 * A glob as the command line takes it (`sync --only`, `cache prune --repo`): the upstream is
 * optional, so it selects a repository when it matches the repository alone
 * (`library/alpine`) or with its upstream (`docker.io/library/alpine`).
 */
export class RepositoryFilter {
  readonly glob: RepositoryGlob;

  /** Throws RepositoryGlobError with a one-line reason. */
  constructor(readonly source: string) {
    this.glob = new RepositoryGlob(source, { hostFirst: true });
  }

  matches(upstream: string, repository: string): boolean {
    return this.glob.matches(repository) || this.glob.matches(`${upstream}/${repository}`);
  }
}

function matchFrom(parts: readonly Part[], p: number, segments: readonly string[], s: number): boolean {
  for (; p < parts.length; p++) {
    const part = parts[p];
    if (part === 'any-depth') {
      // Patterns are a handful of segments: trying every split is cheap.
      for (let skip = s; skip <= segments.length; skip++) if (matchFrom(parts, p + 1, segments, skip)) return true;
      return false;
    }
    const segment = segments[s];
    if (segment === undefined || part === undefined || !part.test(segment)) return false;
    s++;
  }
  return s === segments.length;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
