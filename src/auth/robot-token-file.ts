import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * `<storage>/auth/tokens.json`: the robot tokens, each as the SHA-256 of its secret (never the
 * secret), 0600 in a 0700 directory. Only whoever holds the storage writes it (a serve, or a token
 * command alone), always whole through a rename, so a crash leaves the old file or the new one.
 */
export function robotTokenFile(storageRoot: string): string {
  return path.join(storageRoot, 'auth', 'tokens.json');
}

export interface StoredToken {
  readonly name: string;
  /** SHA-256 of the secret: 32 bytes. A secret has 256 random bits, so a fast hash is as good as a slow one. */
  readonly hash: Buffer;
  /** `--read` patterns as `<upstream>/<glob>`; undefined: none of its own (the rules alone decide). */
  readonly read: readonly string[] | undefined;
  readonly createdAt: number;
  readonly expiresAt: number | undefined;
  lastUsedAt: number | undefined;
}

/** The file is there but is not a token file this release can read: refuse rather than guess. */
export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

interface FileShape {
  readonly version: 1;
  readonly tokens: ReadonlyArray<{
    name: string;
    sha256: string;
    read: string[] | null;
    created: string;
    expires: string | null;
    lastUsed: string | null;
  }>;
}

/** The tokens on disk; none when the file does not exist yet. */
export async function readTokenFile(file: string): Promise<StoredToken[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TokenFileError(`robot token file ${file} is not JSON`);
  }
  const shape = raw as Partial<FileShape> | null;
  if (shape?.version !== 1 || !Array.isArray(shape.tokens)) throw new TokenFileError(`robot token file ${file} is not a version 1 token file`);
  return shape.tokens.map((t, i) => {
    const bad = (what: string) => new TokenFileError(`robot token file ${file}: token ${i + 1} ${what}`);
    if (typeof t.name !== 'string' || t.name === '') throw bad('has no name');
    if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) throw bad('has no valid sha256');
    if (t.read !== null && !(Array.isArray(t.read) && (t.read as unknown[]).every((r) => typeof r === 'string'))) throw bad('has a bad read list');
    const createdAt = time(t.created);
    if (createdAt === undefined) throw bad('has no valid creation time');
    return {
      name: t.name,
      hash: Buffer.from(t.sha256, 'hex'),
      read: t.read ?? undefined,
      createdAt,
      expiresAt: time(t.expires),
      lastUsedAt: time(t.lastUsed),
    };
  });
}

function time(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Replaces the file whole: a temp file in the same directory, flushed, then renamed over it. */
export async function writeTokenFile(file: string, tokens: readonly StoredToken[]): Promise<void> {
  const shape: FileShape = {
    version: 1,
    tokens: tokens.map((t) => ({
      name: t.name,
      sha256: t.hash.toString('hex'),
      read: t.read === undefined ? null : [...t.read],
      created: new Date(t.createdAt).toISOString(),
      expires: iso(t.expiresAt),
      lastUsed: iso(t.lastUsedAt),
    })),
  };
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(shape, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
