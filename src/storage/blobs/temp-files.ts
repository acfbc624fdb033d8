import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isErrno } from '../fs-util.js';
import { StorageError } from '../errors.js';
import { storageLayout } from '../layout.js';

/** In-progress blob writes (names: layout.ts). */
export interface TempFile {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
}

function tmpDir(root: string): string {
  return storageLayout(root).tmpDir;
}

export async function listTempFiles(root: string): Promise<TempFile[]> {
  let names: string[];
  try {
    names = await readdir(tmpDir(root));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw new StorageError(`listing temp files under ${tmpDir(root)} failed`, { cause: error });
  }
  const files: TempFile[] = [];
  for (const name of names) {
    try {
      const info = await stat(path.join(tmpDir(root), name));
      files.push({ name, size: info.size, mtimeMs: info.mtimeMs });
    } catch {
      // finished (renamed into place) or aborted meanwhile
    }
  }
  return files;
}

/** `name` comes from listTempFiles: a plain file name, never a path. */
export async function removeTempFile(root: string, name: string): Promise<void> {
  if (name !== path.basename(name) || name.startsWith('.')) throw new StorageError(`not a temp file name: ${name}`);
  await rm(path.join(tmpDir(root), name), { force: true, recursive: true });
}
