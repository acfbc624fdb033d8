import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError, parseRepositoryPatterns, type RepositoryPattern, type UpstreamConfig } from '../config/index.js';
import type { Identity } from '../access/index.js';
import { errorSummary, type Logger } from '../observability/index.js';
import { RepositoryGlob } from '../oci/index.js';
import { readTokenFile, robotTokenFile, writeTokenFile, type StoredToken } from './robot-token-file.js';

/** `rmt_` and 32 random bytes in base64url: a prefix secret scanners can be taught, and 256 bits. */
export const ROBOT_SECRET_PREFIX = 'rmt_';
const SECRET = /^rmt_[A-Za-z0-9_-]{43}$/;
/** What access.rules[].tokens and the audit log name a token by. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A token command that cannot be done as asked: a bad or taken name, an unknown token, a bad pattern or expiry. */
export class RobotTokenError extends Error {
  override readonly name = 'RobotTokenError';
}

/** What `token ls` shows: everything but the hash. Times are ms since the epoch. */
export interface RobotTokenInfo {
  readonly name: string;
  /** `--read` patterns; undefined: none of its own (the access rules alone decide). */
  readonly read: readonly string[] | undefined;
  readonly createdAt: number;
  readonly expiresAt: number | undefined;
  readonly lastUsedAt: number | undefined;
  readonly expired: boolean;
}

export interface CreatedRobotToken extends RobotTokenInfo {
  /** Shown once, never stored. */
  readonly secret: string;
}

export interface CreateRobotToken {
  readonly name: string;
  /** `<upstream>/<repository glob>` patterns (the `storage.pin` grammar); empty or undefined: no restriction of its own. */
  readonly read?: readonly string[];
  /** Lifetime from now; undefined: until revoked. */
  readonly expiresInMs?: number;
}

export interface RobotTokensOptions {
  readonly storageRoot: string;
  /** To read `--read` patterns (names and aliases). */
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly logger: Logger;
  readonly now?: () => number;
  /** A use waits at most this long to be written (default 60 s): one write a minute, not one per pull. */
  readonly lastUsedFlushMs?: number;
}

interface Loaded extends StoredToken {
  /** Its `read` patterns compiled; undefined: unrestricted. A pattern that no longer parses matches nothing. */
  readonly scope: ReadonlyArray<{ readonly upstream: string; readonly glob: RepositoryGlob }> | undefined;
}

/**
 * Robot tokens for CI and nodes: long-lived secrets, usable as the Basic password with any user
 * name. The process that holds the storage owns the file: it loads it once and every change goes
 * through it (the CLI asks a running serve over the admin socket), so a revocation counts at once.
 */
export class RobotTokens {
  readonly file: string;
  readonly #now: () => number;
  #tokens: Loaded[] = [];
  #writing: Promise<void> = Promise.resolve();
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RobotTokensOptions) {
    this.file = robotTokenFile(options.storageRoot);
    this.#now = options.now ?? Date.now;
  }

  /** Reads the file (none yet is no tokens). Throws TokenFileError when it is damaged: fail closed. */
  async load(): Promise<void> {
    this.#tokens = (await readTokenFile(this.file)).map((t) => this.#compile(t));
  }

  async create(request: CreateRobotToken): Promise<CreatedRobotToken> {
    const { name, expiresInMs } = request;
    if (!NAME.test(name)) throw new RobotTokenError(`"${name}" is not a token name: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    const read = request.read === undefined || request.read.length === 0 ? undefined : this.#canonical(request.read);
    if (expiresInMs !== undefined && !(Number.isSafeInteger(expiresInMs) && expiresInMs > 0)) throw new RobotTokenError('the expiry must be a positive duration such as "30d"');
    const secret = ROBOT_SECRET_PREFIX + randomBytes(32).toString('base64url');
    const now = this.#now();
    const token = this.#compile({ name, hash: sha256(secret), read, createdAt: now, expiresAt: expiresInMs === undefined ? undefined : now + expiresInMs, lastUsedAt: undefined });
    await this.#mutate((tokens) => {
      if (tokens.some((t) => t.name === name)) throw new RobotTokenError(`a token named "${name}" exists already (revoke it first to replace it)`);
      return [...tokens, token];
    });
    this.options.logger.info({ tokenName: name, read, expiresAt: token.expiresAt }, 'robot token created');
    return { ...this.#info(token, now), secret };
  }

  list(): RobotTokenInfo[] {
    const now = this.#now();
    return this.#tokens.map((t) => this.#info(t, now)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async revoke(name: string): Promise<void> {
    await this.#mutate((tokens) => {
      if (!tokens.some((t) => t.name === name)) throw new RobotTokenError(`no token named "${name}"`);
      return tokens.filter((t) => t.name !== name);
    });
    this.options.logger.info({ tokenName: name }, 'robot token revoked');
  }

  /**
   * The token whose secret this is, if it is one and has not expired; its use is recorded. Every
   * stored hash is compared, in constant time, whichever matches.
   */
  verify(secret: string): Identity | undefined {
    if (!SECRET.test(secret)) return undefined;
    const hash = sha256(secret);
    let found: Loaded | undefined;
    for (const t of this.#tokens) if (timingSafeEqual(t.hash, hash)) found = t;
    const now = this.#now();
    if (found === undefined || expired(found, now)) return undefined;
    found.lastUsedAt = now;
    this.#scheduleFlush();
    return { subject: found.name, kind: 'token', method: 'robot', groups: [] };
  }

  /** Whether a token of this name exists and has not expired: a bearer token issued to it is honoured only then. */
  isLive(name: string): boolean {
    const token = this.#tokens.find((t) => t.name === name);
    return token !== undefined && !expired(token, this.#now());
  }

  /**
   * The token's own `--read` patterns, for the read policy to intersect with `access.rules`:
   * undefined when it has none (the rules alone decide), [] when the token does not exist.
   */
  readPatterns(name: string): readonly RepositoryPattern[] | undefined {
    const token = this.#tokens.find((t) => t.name === name);
    if (token === undefined) return [];
    return token.scope?.map((s) => ({ upstream: s.upstream, repository: s.glob.source }));
  }

  /** Whether the token's own patterns allow this repository (true when it has none); false for an unknown or expired token. */
  mayRead(name: string, upstream: string, repository: string): boolean {
    const token = this.#tokens.find((t) => t.name === name);
    if (token === undefined || expired(token, this.#now())) return false;
    return token.scope?.some((s) => s.upstream === upstream && s.glob.matches(repository)) ?? true;
  }

  /** Writes pending last-use times. */
  async close(): Promise<void> {
    if (this.#flushTimer === undefined) return this.#writing;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#mutate((tokens) => tokens).catch((err: unknown) => this.#flushFailed(err));
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#mutate((tokens) => tokens).catch((err: unknown) => this.#flushFailed(err));
    }, this.options.lastUsedFlushMs ?? 60_000);
    this.#flushTimer.unref();
  }

  #flushFailed(err: unknown): void {
    this.options.logger.warn({ file: this.file, error: errorSummary(err) }, 'recording robot token use failed');
  }

  /**
   * One change at a time, each on the list as the previous one left it (two creates of one name
   * cannot both pass the check); the list changes only once the file holds the change.
   */
  #mutate(change: (tokens: Loaded[]) => Loaded[]): Promise<void> {
    const write = this.#writing.then(async () => {
      const next = change(this.#tokens);
      await writeTokenFile(this.file, next);
      // Uses recorded while writing live on in the objects both lists share.
      this.#tokens = next;
    });
    this.#writing = write.catch(() => {});
    return write;
  }

  /** `--read` as typed → `<upstream>/<glob>` with aliases and `library/` resolved, as pins store them. */
  #canonical(read: readonly string[]): string[] {
    try {
      return parseRepositoryPatterns([...read], '--read', this.options.upstreams).map((p) => `${p.upstream}/${p.repository}`);
    } catch (err) {
      if (err instanceof ConfigError) throw new RobotTokenError(err.message.replace(/^--read\[\d+\]/, '--read'));
      throw err;
    }
  }

  #compile(token: StoredToken): Loaded {
    if (token.read === undefined) return { ...token, scope: undefined };
    const scope = token.read.flatMap((pattern) => {
      try {
        const [p] = parseRepositoryPatterns([pattern], 'read', this.options.upstreams);
        return p === undefined ? [] : [{ upstream: p.upstream, glob: new RepositoryGlob(p.repository) }];
      } catch (err) {
        // An upstream gone from the config: the pattern grants nothing, the token stays restricted.
        this.options.logger.warn({ tokenName: token.name, pattern, error: errorSummary(err) }, 'robot token read pattern ignored');
        return [];
      }
    });
    return { ...token, scope };
  }

  #info(t: Loaded, now: number): RobotTokenInfo {
    return { name: t.name, read: t.read, createdAt: t.createdAt, expiresAt: t.expiresAt, lastUsedAt: t.lastUsedAt, expired: expired(t, now) };
  }
}

function expired(token: StoredToken, now: number): boolean {
  return token.expiresAt !== undefined && token.expiresAt <= now;
}

function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
