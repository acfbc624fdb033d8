import { open, type FileHandle } from 'node:fs/promises';

/** True if `error` is a Node system error with this `code` (ENOENT, EEXIST, ...). */
export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/**
 * Makes a rename in `dir` durable. Best effort: some filesystems refuse fsync on a
 * directory, and the renamed file itself was already synced.
 */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // see above: not worth failing a commit for
  } finally {
    await handle?.close().catch(() => {});
  }
}
