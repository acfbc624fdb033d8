/**
 * The htpasswd file format, pure: `user:hash` per line, `#` comments and blank lines ignored.
 * Only bcrypt hashes (`$2y$`, `$2a$`, `$2b$`, what `htpasswd -B` writes) are accepted: MD5-crypt
 * (`$apr1$`), `{SHA}` and plain text are fast to brute-force, so their lines are refused (each
 * named by user and line, for one warning) while the rest of the file still loads.
 */

/** `$2<minor>$<cost>$` then 22 salt and 31 hash characters of bcrypt's base64 alphabet. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
/** What a user name may hold: no `:` (the separator) and nothing invisible. */
const USER = /^[^:\s]+$/;

/** The file cannot be used at all (a torn write, an editor's half-saved buffer): keep what was loaded before. */
export class HtpasswdError extends Error {
  override readonly name = 'HtpasswdError';
}

export interface HtpasswdEntries {
  /** User → bcrypt hash. */
  readonly users: ReadonlyMap<string, string>;
  /** Lines of a user whose hash is not bcrypt: that user cannot log in. 1-based line numbers. */
  readonly refused: ReadonlyArray<{ readonly user: string; readonly line: number }>;
}

/**
 * Throws HtpasswdError naming the line and what is wrong with it, never its content: a broken line
 * may hold a password someone pasted in.
 */
export function parseHtpasswd(text: string): HtpasswdEntries {
  const users = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const refused: Array<{ user: string; line: number }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const colon = entry.indexOf(':');
    if (colon < 0) throw new HtpasswdError(`line ${line} is not "user:hash"`);
    const user = entry.slice(0, colon);
    const hash = entry.slice(colon + 1);
    if (!USER.test(user)) throw new HtpasswdError(`line ${line} has an empty or invalid user name`);
    if (hash === '') throw new HtpasswdError(`line ${line} has no hash`);
    const earlier = firstLine.get(user);
    if (earlier !== undefined) throw new HtpasswdError(`line ${line} repeats the user of line ${earlier}`);
    firstLine.set(user, line);
    if (BCRYPT.test(hash)) users.set(user, hash);
    // A bcrypt prefix with the wrong length is a damaged line, not another hash format.
    else if (/^\$2[aby]\$/.test(hash)) throw new HtpasswdError(`line ${line} has a damaged bcrypt hash`);
    else refused.push({ user, line });
  });
  return { users, refused };
}

/** The cost most of the file's hashes use (10 when it has none): what an unknown user's check costs too. */
export function typicalCost(users: ReadonlyMap<string, string>): number {
  const counts = new Map<number, number>();
  for (const hash of users.values()) {
    const cost = Number(hash.slice(4, 6));
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let best = 10;
  let most = 0;
  for (const [cost, n] of counts) {
    if (n > most) [best, most] = [cost, n];
  }
  return best;
}
