import { RepositoryGlob } from '../oci/index.js';
import type { AccessConfig, RepositoryPattern } from '../config/index.js';
import type { Identity } from './access-controller.js';

/**
 * How specific a repository glob is, compared element by element (bigger wins): the literal
 * characters it holds (every character but `*`, outside `**` segments and not counting `/`), then
 * fewer `**` segments, then fewer `*`. An exact name beats every glob that matches it, `team/app-*`
 * beats `team/*`, `team/*` beats `team/**`, and `team/*` beats `*` + `/app` (4 literal characters
 * to 3). Patterns matching one repository always share its upstream, so only the glob counts.
 */
export type Specificity = readonly [literal: number, fewerDeep: number, fewerStars: number];

export function specificity(glob: string): Specificity {
  let literal = 0;
  let deep = 0;
  let stars = 0;
  for (const segment of glob.split('/')) {
    if (segment === '**') {
      deep++;
      continue;
    }
    for (const c of segment) {
      if (c === '*') stars++;
      else literal++;
    }
  }
  return [literal, -deep, -stars];
}

/** Negative when `a` is less specific than `b`, 0 when equally specific. */
export function compareSpecificity(a: Specificity, b: Specificity): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** One pattern and whom it lets read what it matches. */
interface Grant {
  readonly glob: RepositoryGlob;
  readonly specificity: Specificity;
  readonly admits: (identity: Identity) => boolean;
}

export interface ReadPolicyOptions {
  readonly access: AccessConfig;
  /** Upstreams configured with `private: true`: `access.anonymous` is ignored for them. */
  readonly privateUpstreams: ReadonlySet<string>;
  /**
   * A robot token's own read patterns (`token create --read`), by token name; undefined for a
   * token without any. They count as a rule naming that token alone.
   */
  readonly tokenPatterns?: (name: string) => readonly RepositoryPattern[] | undefined;
}

/**
 * Who may read which repository, from `access` (used only when `auth` is configured; without it
 * the mirror uses allowAll). The decision, for a repository `<upstream>/<name>`:
 *
 * - Candidates are every pattern that matches it: each `access.anonymous` pattern (admitting
 *   everyone, anonymous or not; never on a private upstream), each pattern of each `access.rules`
 *   entry (admitting the users, groups and tokens it names), and the asking robot token's own
 *   patterns (admitting that token).
 * - Only the most specific candidates decide (see specificity()); equally specific ones are one
 *   level and the identities they admit are combined. Someone not admitted at that level is denied
 *   even when a broader pattern would admit them: a rule on `team/secret` for alice takes
 *   `team/secret` away from a `team/**` rule for everyone else.
 * - No candidate: denied (auth on means default deny).
 */
export class ReadPolicy {
  /** upstream → its grants: a decision reads only the patterns of its own upstream. */
  readonly #byUpstream = new Map<string, Grant[]>();
  readonly #globs = new Map<string, RepositoryGlob>();
  readonly #admin: AccessConfig['admin'];
  readonly #tokenPatterns: ReadPolicyOptions['tokenPatterns'];
  /** Whether `/metrics` is open to anyone. */
  readonly metricsOpen: boolean;
  /** `access.anonymous` patterns dropped because their upstream is private (worth a start-up warning). */
  readonly ignoredAnonymous: readonly RepositoryPattern[];

  constructor(options: ReadPolicyOptions) {
    const { access, privateUpstreams } = options;
    this.#admin = access.admin;
    this.#tokenPatterns = options.tokenPatterns;
    this.metricsOpen = access.metrics === 'anonymous';
    const everyone = () => true;
    const publicAnonymous = access.anonymous.filter((p) => !privateUpstreams.has(p.upstream));
    this.ignoredAnonymous = access.anonymous.filter((p) => privateUpstreams.has(p.upstream));
    for (const p of publicAnonymous) this.#add(p, everyone);
    for (const rule of access.rules) {
      const users = new Set(rule.users);
      const groups = new Set(rule.groups);
      const tokens = new Set(rule.tokens);
      const admits = (id: Identity): boolean =>
        id.kind === 'token' ? tokens.has(id.subject) : id.kind === 'user' && (users.has(id.subject) || id.groups.some((g) => groups.has(g)));
      for (const p of rule.repositories) this.#add(p, admits);
    }
  }

  canRead(identity: Identity, upstream: string, repository: string): boolean {
    let best: Specificity | undefined;
    let admitted = false;
    const consider = (grant: Grant) => {
      if (!grant.glob.matches(repository)) return;
      const order = best === undefined ? 1 : compareSpecificity(grant.specificity, best);
      if (order < 0) return;
      if (order > 0) {
        best = grant.specificity;
        admitted = false;
      }
      admitted ||= grant.admits(identity);
    };
    for (const grant of this.#byUpstream.get(upstream) ?? []) consider(grant);
    if (identity.kind === 'token') {
      const own = (id: Identity) => id.kind === 'token' && id.subject === identity.subject;
      for (const p of this.#tokenPatterns?.(identity.subject) ?? []) {
        if (p.upstream === upstream) consider({ glob: this.#glob(p.repository), specificity: specificity(p.repository), admits: own });
      }
    }
    return admitted;
  }

  /** `access.admin`: users (and certificate identities) named there or in one of its groups. */
  isAdmin(identity: Identity): boolean {
    return identity.kind === 'user' && (this.#admin.users.includes(identity.subject) || identity.groups.some((g) => this.#admin.groups.includes(g)));
  }

  #add(pattern: RepositoryPattern, admits: (id: Identity) => boolean): void {
    const list = this.#byUpstream.get(pattern.upstream) ?? [];
    list.push({ glob: this.#glob(pattern.repository), specificity: specificity(pattern.repository), admits });
    this.#byUpstream.set(pattern.upstream, list);
  }

  /** Token patterns are looked up per request: compile each distinct glob once. */
  #glob(source: string): RepositoryGlob {
    let glob = this.#globs.get(source);
    if (glob === undefined) {
      glob = new RepositoryGlob(source);
      this.#globs.set(source, glob);
    }
    return glob;
  }
}
