import type { Server } from 'node:net';
import { StorageError } from '../storage/index.js';
import { callAdmin, describeHolder } from './admin-socket.js';
import type { Holder } from './protocol.js';
import { acquireStorage } from './storage-lock.js';

/** Holds the storage with `server` listening on its socket, or says who holds it. */
export async function holdStorage(root: string, server: Server): Promise<void> {
  const result = await acquireStorage(root, server);
  if (result.held) return;
  throw new StorageError(`storage ${root} is in use by ${await whoHolds(root)}`);
}

export async function whoHolds(root: string): Promise<string> {
  try {
    const reply = await callAdmin(root, 'GET', '/v1/owner');
    return describeHolder(reply.body as Holder);
  } catch {
    return 'another process';
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
