import { statfs } from 'node:fs/promises';

/** What the file system holding a path reports. */
export interface DiskSpace {
  /** Bytes an unprivileged writer may still use (statfs bavail: the root reserve excluded). */
  readonly free: number;
  /** The file system's size in bytes. */
  readonly size: number;
}

/** The free space and size of the file system holding `path` (one statfs call). */
export async function diskSpace(path: string): Promise<DiskSpace> {
  const s = await statfs(path);
  return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
}
