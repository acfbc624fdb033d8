import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

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

/** Positional writev that finishes short writes (a full disk or a signal may cut one). */
export async function writeAllAt(handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let bufs = chunks.filter((c) => c.length > 0);
  let at = position;
  while (bufs.length > 0) {
    const { bytesWritten } = await handle.writev(bufs, at);
    at += bytesWritten;
    let skip = bytesWritten;
    while (bufs.length > 0 && skip >= bufs[0]!.length) skip -= bufs.shift()!.length;
    if (skip > 0) bufs = [bufs[0]!.subarray(skip), ...bufs.slice(1)];
  }
}

/** Renames a verified temp file to its final name, durably; a file already there wins (same digest, same bytes). */
export async function placeFile(tmpPath: string, finalPath: string): Promise<void> {
  const dir = dirname(finalPath);
  if (await exists(finalPath)) {
    await unlink(tmpPath);
    return;
  }
  try {
    await rename(tmpPath, finalPath);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    await mkdir(dir, { recursive: true });
    await rename(tmpPath, finalPath);
  }
  await syncDir(dir);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}
