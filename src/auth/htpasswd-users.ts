import bcrypt from 'bcryptjs';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errorCode, type Logger } from '../observability/index.js';
import { watchFile, type FileWatch, type FileWatchOptions } from './file-watch.js';
import { HtpasswdError, parseHtpasswd, typicalCost, type HtpasswdEntries } from './htpasswd.js';

export interface HtpasswdUsersOptions {
  /** `auth.htpasswd`: an absolute path. */
  readonly file: string;
  readonly logger: Logger;
  /** After every reload that changed the users: whatever remembers a verified password must forget it. */
  readonly onChange?: () => void;
  readonly watch?: FileWatchOptions;
}

/**
 * The users of an htpasswd file, re-read whenever it changes so that a rotated Secret takes effect
 * within seconds: a removed user fails from the next request on. A file that cannot be read or
 * parsed (a torn write) leaves the users loaded before in place, with one warning per problem.
 */
export class HtpasswdUsers {
  #users: ReadonlyMap<string, string> = new Map();
  #digest: string | undefined;
  /** A hash of a random password at the file's usual cost: what an unknown user is checked against. */
  #decoy: string | undefined;
  /** The reason the file last failed to load; undefined after a good load (so each problem is logged once). */
  #problem: string | undefined;
  #watch: FileWatch | undefined;
  #loading: Promise<void> = Promise.resolve();

  constructor(private readonly options: HtpasswdUsersOptions) {}

  /** Users loaded now. */
  get size(): number {
    return this.#users.size;
  }

  /** Whether the file names this user now (a refresh token is only as good as its user). */
  has(username: string): boolean {
    return this.#users.has(username);
  }

  /** The first load, then watching. Throws HtpasswdError when the file cannot be read or parsed: start-up stops there. */
  async start(): Promise<void> {
    const { file } = this.options;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new HtpasswdError(`htpasswd file ${file} cannot be read (${errorCode(err) ?? String(err)})`);
    }
    let entries: HtpasswdEntries;
    try {
      entries = parseHtpasswd(text);
    } catch (err) {
      throw err instanceof HtpasswdError ? new HtpasswdError(`htpasswd file ${file}: ${err.message}`) : err;
    }
    await this.#apply(text, entries);
    this.#watch = watchFile(file, () => void this.reload(), this.options.watch);
  }

  /** Re-reads the file (one reload at a time, in order). Never rejects: a bad file is a warning. */
  reload(): Promise<void> {
    this.#loading = this.#loading.then(() => this.#reload());
    return this.#loading;
  }

  /**
   * Whether `password` is `username`'s. The same bcrypt work for a user who does not exist, so the
   * answer's timing does not tell which names do; bcryptjs compares the hashes in constant time and,
   * asynchronous, yields to the event loop between rounds.
   */
  async check(username: string, password: string): Promise<boolean> {
    const hash = this.#users.get(username);
    const decoy = this.#decoy;
    if (decoy === undefined) return false; // not started
    const ok = await bcrypt.compare(password, hash ?? decoy);
    // Re-read: a reload during the compare that removed or changed the user wins.
    return ok && hash !== undefined && this.#users.get(username) === hash;
  }

  close(): void {
    this.#watch?.close();
  }

  async #reload(): Promise<void> {
    const { file } = this.options;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      return this.#trouble(`it cannot be read (${errorCode(err) ?? String(err)})`);
    }
    if (digest(text) === this.#digest) {
      this.#problem = undefined;
      return;
    }
    let entries: HtpasswdEntries;
    try {
      entries = parseHtpasswd(text);
    } catch (err) {
      if (!(err instanceof HtpasswdError)) throw err;
      return this.#trouble(err.message);
    }
    await this.#apply(text, entries);
  }

  async #apply(text: string, entries: HtpasswdEntries): Promise<void> {
    const { file, logger } = this.options;
    for (const { user, line } of entries.refused) {
      logger.warn({ file, user, line }, 'htpasswd line refused: only bcrypt hashes ($2y$, $2a$, $2b$) are accepted (htpasswd -B)');
    }
    const cost = typicalCost(entries.users);
    if (this.#decoy === undefined || bcrypt.getRounds(this.#decoy) !== cost) {
      this.#decoy = await bcrypt.hash(randomBytes(18).toString('base64'), cost);
    }
    this.#users = entries.users;
    this.#digest = digest(text);
    this.#problem = undefined;
    logger.info({ file, users: entries.users.size, refused: entries.refused.length }, 'htpasswd users loaded');
    this.options.onChange?.();
  }

  #trouble(reason: string): void {
    if (reason === this.#problem) return;
    this.#problem = reason;
    this.options.logger.warn({ file: this.options.file, reason, users: this.#users.size }, 'htpasswd file not reloaded: keeping the users loaded before');
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
