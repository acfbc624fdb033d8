import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, rmdir, stat, unlink } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Server } from 'node:net';
import type { Readable } from 'node:stream';
import path from 'node:path';
import { StorageError, storageLayout } from '../storage/index.js';
import type { Holder } from './protocol.js';

/**
 * Who owns a storage directory: hold it, try to, release it, ask who holds it, talk to the holder.
 * Ownership is decided by one Unix socket (layout.ts: admin.sock).
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

/** Holds the storage with `server` listening on its socket, or throws a StorageError naming who holds it. */
export async function holdStorage(root: string, server: Server): Promise<void> {
  const result = await tryHoldStorage(root, server);
  if (result.held) return;
  throw new StorageError(`storage ${root} is in use by ${await describeStorageHolder(root)}`);
}

/**
 * Tries to hold the storage by listening on its socket with `server` (which then answers whoever
 * connects). Resolves `{ held: false }` when a live process holds it.
 */
export async function tryHoldStorage(storageRoot: string, server: Server): Promise<LockResult> {
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

/** Stops listening (the socket file goes with it); safe when it never listened. */
export function releaseStorage(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    // An http.Server (the admin socket) also drops its idle keep-alive connections.
    (server as Partial<{ closeAllConnections(): void }>).closeAllConnections?.();
  });
}

/** Who holds the storage, for a message; "another process" when it does not say. */
export async function describeStorageHolder(root: string): Promise<string> {
  try {
    const reply = await callAdmin(root, 'GET', '/v1/owner');
    return describeHolder(reply.body as Holder);
  } catch {
    return 'another process';
  }
}

export function describeHolder(holder: Holder): string {
  return holder.kind === 'serve' && holder.command === 'serve' ? `a running regmirror serve (pid ${holder.pid})` : `regmirror ${holder.command} (pid ${holder.pid})`;
}

export interface AdminReply {
  readonly status: number;
  readonly body: unknown;
}

/** One request to whoever holds `storageRoot`. Rejects when nobody listens (ECONNREFUSED/ENOENT). */
export function callAdmin(storageRoot: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<AdminReply> {
  const address = socketAddress(adminSocketPath(storageRoot));
  return new Promise<AdminReply>((resolve, reject) => {
    const req = request({ socketPath: address.path, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  }).finally(() => address.release());
}

/** A response of `openAdmin`: its body streams. */
export interface AdminStream {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
}

/**
 * One request to whoever holds `storageRoot` with a streamed body both ways (export and import
 * move blobs over it). Resolves at the response's head: a server that answers before reading the
 * whole upload (it refused it) is heard, and the upload's own error is then ignored.
 */
export function openAdmin(
  storageRoot: string,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  body?: Buffer | Readable,
  headers: Record<string, string> = {},
): Promise<AdminStream> {
  const address = socketAddress(adminSocketPath(storageRoot));
  return new Promise<AdminStream>((resolve, reject) => {
    let answered = false;
    const req = request({ socketPath: address.path, method, path, headers }, (res) => {
      answered = true;
      res.once('close', () => address.release());
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    req.on('error', (err) => {
      if (answered) return;
      address.release();
      reject(err);
    });
    if (body === undefined || Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}
