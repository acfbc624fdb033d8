/**
 * Repository globs, as `storage.pin` (and later the sync job) name sets of repositories. Pure.
 *
 * Grammar: segments separated by single `/`. A segment is `**` (zero or more whole segments) or
 * a run of repository-name characters `[a-z0-9._-]` and `*` (any run of characters inside one
 * segment, never across a `/`). Nothing else (no `?`, classes or braces): the cases that matter
 * are "this repository", "every repository in this namespace" and "everything below here", and a
 * grammar this small cannot surprise an operator.
 */

const SEGMENT = /^[a-z0-9._*-]+$/;

export class RepositoryGlobError extends Error {
  override readonly name = 'RepositoryGlobError';
}

/** One segment: `**`, or a single-segment matcher. */
type Part = 'any-depth' | RegExp;

export class RepositoryGlob {
  readonly #parts: readonly Part[];

  /** Throws RepositoryGlobError with a one-line reason. */
  constructor(readonly source: string) {
    if (source === '') throw new RepositoryGlobError('the repository pattern is empty');
    this.#parts = source.split('/').map((segment) => {
      if (segment === '') throw new RepositoryGlobError(`empty segment in "${source}" (use single "/" between segments)`);
      if (segment === '**') return 'any-depth';
      if (segment.includes('**')) throw new RepositoryGlobError(`"**" must be a whole segment in "${source}"`);
      if (!SEGMENT.test(segment)) {
        throw new RepositoryGlobError(`segment "${segment}" of "${source}" may hold only lowercase letters, digits, ".", "_", "-" and "*"`);
      }
      return new RegExp(`^${segment.split('*').map(escape).join('[^/]*')}$`);
    });
  }

  matches(repository: string): boolean {
    return matchFrom(this.#parts, 0, repository.split('/'), 0);
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
