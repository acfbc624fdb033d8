import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../access/index.js';
import type { AuthConfig, UpstreamConfig } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import type { FileWatchOptions } from './file-watch.js';
import { HtpasswdUsers } from './htpasswd-users.js';
import { RobotTokens } from './robot-tokens.js';
import { FailureThrottle, type FailureThrottleOptions } from './throttle.js';
import { InvalidCredentials, type PasswordVerifier } from './types.js';

export interface CredentialsOptions {
  /** `auth`; undefined: no users (robot tokens still work, for `token` commands before auth is turned on). */
  readonly auth: Pick<AuthConfig, 'htpasswd' | 'groups'> | undefined;
  readonly storageRoot: string;
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Failure delays; `now` is passed on unless given here. */
  readonly throttle?: FailureThrottleOptions;
  /** How the htpasswd file is watched (tests shorten the poll). */
  readonly watch?: FileWatchOptions;
  /** How long a verified user's password is remembered (default 60 s), so HTTP Basic on every request costs one bcrypt a minute. */
  readonly verifiedTTLms?: number;
  readonly lastUsedFlushMs?: number;
}

/**
 * The PasswordVerifier of the mirror: htpasswd users and robot tokens behind one failure throttle.
 * A robot token is recognised by its prefix and works with any user name; anything else is an
 * htpasswd user's password. Holds the htpasswd watcher and the token file, so it opens and closes
 * with the storage.
 */
export class Credentials implements PasswordVerifier {
  readonly tokens: RobotTokens;
  /** Undefined without `auth.htpasswd`. */
  readonly users: HtpasswdUsers | undefined;
  readonly throttle: FailureThrottle;
  readonly #groups: ReadonlyMap<string, readonly string[]>;
  /** HMAC(user, password) → identity: keyed by a per-process secret, so the map holds nothing to guess against offline. */
  readonly #verified = new LRUCache<string, { readonly identity: Identity; readonly until: number }>({ max: 1024 });
  readonly #key = randomBytes(32);
  /** Checks in flight, by the same key: a client's parallel first requests wait for one bcrypt check instead of each running its own. */
  readonly #checking = new Map<string, Promise<Identity>>();
  readonly #now: () => number;
  readonly #verifiedTTLms: number;

  constructor(options: CredentialsOptions) {
    const { auth, logger } = options;
    this.#groups = membership(auth?.groups ?? new Map());
    this.#now = options.now ?? Date.now;
    this.#verifiedTTLms = options.verifiedTTLms ?? 60_000;
    this.tokens = new RobotTokens({ storageRoot: options.storageRoot, upstreams: options.upstreams, logger, now: options.now, lastUsedFlushMs: options.lastUsedFlushMs });
    this.users =
      auth?.htpasswd === undefined
        ? undefined
        : new HtpasswdUsers({ file: auth.htpasswd, logger, watch: options.watch, onChange: () => this.#verified.clear() });
    this.throttle = new FailureThrottle({
      now: options.now,
      onCapReached: (address) => logger.warn({ address }, 'repeated authentication failures: each further attempt from this address waits the longest delay'),
      ...options.throttle,
    });
  }

  /** Loads the token file and the htpasswd file (throws TokenFileError or HtpasswdError: start-up stops), then watches htpasswd. */
  async open(): Promise<void> {
    await this.tokens.load();
    await this.users?.start();
  }

  async close(): Promise<void> {
    this.users?.close();
    await this.tokens.close();
  }

  /**
   * The identity as it is now, for a refresh grant and for every bearer token presented: undefined
   * once the user left the htpasswd file or the robot token was revoked or expired; groups as
   * `auth.groups` says today.
   */
  current(identity: Identity): Identity | undefined {
    if (identity.kind === 'token') return this.tokens.isLive(identity.subject) ? identity : undefined;
    if (identity.kind === 'user' && identity.method === 'basic') return this.users?.has(identity.subject) === true ? { ...identity, groups: this.groupsOf(identity.subject) } : undefined;
    return identity;
  }

  /** The groups of `auth.groups` a subject is in (users; also a client certificate's CN). */
  groupsOf(subject: string): readonly string[] {
    return this.#groups.get(subject) ?? [];
  }

  verify(username: string, password: string, remoteAddress?: string): Promise<Identity> {
    return this.throttle.run(remoteAddress, async () => {
      const robot = this.tokens.verify(password);
      if (robot !== undefined) return robot;
      const key = createHmac('sha256', this.#key).update(username).update('\0').update(password).digest('base64');
      const known = this.#verified.get(key);
      if (known !== undefined && known.until > this.#now()) return known.identity;
      let pending = this.#checking.get(key);
      if (pending === undefined) {
        pending = this.#check(username, password, key).finally(() => this.#checking.delete(key));
        this.#checking.set(key, pending);
      }
      return pending;
    });
  }

  async #check(username: string, password: string, key: string): Promise<Identity> {
    // A wrong robot secret costs the same bcrypt check as a wrong password: timing tells nothing apart.
    if (this.users === undefined || !(await this.users.check(username, password))) throw new InvalidCredentials('wrong user name or password');
    const identity: Identity = { subject: username, kind: 'user', method: 'basic', groups: this.groupsOf(username) };
    this.#verified.set(key, { identity, until: this.#now() + this.#verifiedTTLms });
    return identity;
  }
}

/** `auth.groups` (group → users) turned around: user → groups, sorted. */
function membership(groups: ReadonlyMap<string, readonly string[]>): ReadonlyMap<string, readonly string[]> {
  const byUser = new Map<string, string[]>();
  for (const [group, users] of groups) {
    for (const user of users) byUser.set(user, [...(byUser.get(user) ?? []), group]);
  }
  for (const list of byUser.values()) list.sort();
  return byUser;
}
