import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, rmdir, stat, unlink } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import path from 'node:path';
import { storageLayout } from '../storage/index.js';

/**
 * Who may use a storage directory, decided by one Unix socket (layout.ts: admin.sock).
 * Whoever listens on it (a `serve`, or a `cache` command working alone) holds the storage; the file
 * is 0600, so file permissions are the authorisation. A socket that refuses connections is left by a
 * dead holder and is replaced; the check-and-replace runs under a tiny mkdir mutex so two starters
 * can never both unlink and bind (see README, "Cache admin commands").
 */
export function adminSocketPath(storageRoot: string): string {
  return storageLayout(storageRoot).adminSocket;
}

/** sun_path holds 108 bytes; longer paths go through the directory's fd (Linux /proc/self/fd). */
const MAX_SOCKET_PATH = 100;

export interface SocketAddress {
  /** What to pass to listen()/connect(). */
  readonly path: string;
  /** Closes the directory fd a long path needed. */
  release(): void;
}

export function socketAddress(file: string): SocketAddress {
  if (Buffer.byteLength(file) <= MAX_SOCKET_PATH) return { path: file, release: () => {} };
  const fd = openSync(path.dirname(file), 'r');
  let open = true;
  return {
    path: `/proc/self/fd/${fd}/${path.basename(file)}`,
    release: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

export type LockResult = { readonly held: true; readonly server: Server } | { readonly held: false };

/** A mutex dir older than this belongs to a process that died inside the few ms it is held. */
const STALE_MUTEX_MS = 5000;

/**
 * Tries to hold the storage by listening on its socket with `server` (which then answers whoever
 * connects). Resolves `{ held: false }` when a live process holds it.
 */
export async function acquireStorage(storageRoot: string, server: Server): Promise<LockResult> {
  const file = adminSocketPath(storageRoot);
  await mkdir(path.dirname(file), { recursive: true });
  const address = socketAddress(file);
  server.once('close', () => address.release());
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      if (await tryListen(server, address.path)) {
        await chmod(file, 0o600);
        return { held: true, server };
      }
      if (await isLive(address.path)) {
        // This server never listened, so its 'close' never comes to release a long path's fd.
        address.release();
        return { held: false };
      }
      const mutex = `${file}.recover`;
      if (!(await tryMkdir(mutex))) {
        await breakStaleMutex(mutex);
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      try {
        // Only a mutex holder unlinks, and only a socket nobody answers on: never a live one.
        if (!(await isLive(address.path))) {
          await unlink(file).catch(() => {});
          if (await tryListen(server, address.path)) {
            await chmod(file, 0o600);
            return { held: true, server };
          }
        }
      } finally {
        await rmdir(mutex).catch(() => {});
      }
    }
    throw new Error(`could not take the storage lock ${file}`);
  } catch (err) {
    if (!server.listening) address.release();
    throw err;
  }
}

function tryListen(server: Server, where: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(where);
  });
}

/**
 * Someone accepts connections there. Only "nobody listens" (ECONNREFUSED, ENOENT) counts as dead:
 * a socket we may not connect to (EACCES, as another user than the server) belongs to a live
 * holder, and taking it over would put two processes on one storage.
 */
export function isLive(where: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(where);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
}

async function tryMkdir(dir: string): Promise<boolean> {
  try {
    await mkdir(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function breakStaleMutex(dir: string): Promise<void> {
  try {
    if (Date.now() - (await stat(dir)).mtimeMs > STALE_MUTEX_MS) await rmdir(dir);
  } catch {
    // gone already, or another process broke it
  }
}
