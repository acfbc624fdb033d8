import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { errorSummary } from '../observability/index.js';

/**
 * Why: libuv 1.46 (Node 20.20) accepts ONE connection per listening handle per event-loop
 * iteration (libuv PR 3696: it stopped accepting in a loop). Under load an iteration serves
 * every ready socket, 10-30 ms with 200 busy clients, so new connections queue in the kernel
 * (130-190 deep) and a fresh connection waited 0.4-4 s for its first byte while kept-open requests
 * took 6 ms. Node 20 has no SO_REUSEPORT and no dup(), but a handle sent over an IPC channel
 * arrives as a new descriptor of the same socket: a short-lived helper child sends the listening
 * socket back `extra` times, and each copy, polled by the same loop, accepts its own connection
 * per iteration. Everything stays in this process (one download per blob, one cache).
 */
const HELPER = `process.on('message', (m, handle) => process.send('fd', handle));`;

/** How long the helper may take to hand back the copies before the listener goes on with one. */
const HELPER_TIMEOUT_MS = 5_000;

/** Extra accept handles on one listening socket; `close()` stops them and waits for their connections. */
export interface AcceptFan {
  /** Handles added (0 when the helper could not be run). */
  readonly extra: number;
  close(): Promise<void>;
}

/** net.Server fields Node sets from its constructor options but does not declare in its types. */
interface ServerSettings {
  readonly allowHalfOpen?: boolean;
  readonly noDelay?: boolean;
  readonly keepAlive?: boolean;
  readonly keepAliveInitialDelay?: number;
  readonly pauseOnConnect?: boolean;
}

/**
 * Adds `extra` accept handles to the listening `server`; each hands its connections to `server`
 * as if it had accepted them (the 'connection' event, which http, https and tls servers serve).
 * Never throws: without the helper the server keeps its single handle, and `onFailure` says why.
 * `helper` is the helper's script (tests give one that fails).
 */
export async function fanOutAccepts(server: Server, extra: number, onFailure: (error: Error) => void, helper = HELPER): Promise<AcceptFan> {
  // `_handle` is the listening TCP handle Node keeps on every listening net.Server (undeclared in its types).
  const handle = (server as unknown as { _handle?: object | null })._handle;
  if (extra <= 0 || handle === undefined || handle === null) return { extra: 0, close: async () => {} };
  let copies: object[];
  try {
    copies = await copiesOf(handle, extra, helper);
  } catch (error) {
    onFailure(error as Error);
    return { extra: 0, close: async () => {} };
  }
  const settings = server as unknown as ServerSettings;
  const forward = (socket: Socket): void => void server.emit('connection', socket);
  const listeners = copies.map((copy) => {
    const listener = createServer(
      {
        allowHalfOpen: settings.allowHalfOpen,
        noDelay: settings.noDelay,
        keepAlive: settings.keepAlive,
        keepAliveInitialDelay: settings.keepAliveInitialDelay,
        pauseOnConnect: settings.pauseOnConnect,
      },
      forward,
    );
    // A received TCP handle, already bound and listening: net.Server adopts it as its own.
    listener.listen(copy as Parameters<Server['listen']>[0]);
    return listener;
  });
  return {
    extra: listeners.length,
    close: () => Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve())))).then(() => {}),
  };
}

/** `count` new descriptors of the socket behind `handle`, round-tripped through a helper child. */
function copiesOf(handle: object, count: number, helper: string): Promise<object[]> {
  return new Promise((resolve, reject) => {
    const copies: object[] = [];
    // The helper is plain JS: no loaders (a test runner's NODE_OPTIONS), no flags of this process.
    const child = spawn(process.execPath, ['-e', helper], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
    const timer = setTimeout(() => finish(new Error(`the accept helper handed back ${copies.length} of ${count} handles in ${HELPER_TIMEOUT_MS} ms`)), HELPER_TIMEOUT_MS);
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.connected) child.disconnect();
      if (error) {
        child.kill();
        for (const copy of copies) (copy as { close?: () => void }).close?.();
        reject(error);
      } else resolve(copies);
    };
    child.on('message', (message: unknown, copy: unknown) => {
      if (message !== 'fd' || typeof copy !== 'object' || copy === null) return;
      copies.push(copy);
      if (copies.length === count) finish();
    });
    child.once('error', (error) => finish(error));
    child.once('exit', (code, signal) => finish(new Error(`the accept helper exited (${signal ?? code}) after ${copies.length} of ${count} handles`)));
    // One handle per message: each arrives in the helper as a descriptor of its own and comes back as another.
    for (let i = 0; i < count; i++) child.send('fd', handle as Parameters<typeof child.send>[1]);
  });
}

/**
 * Listens on `host:port`, then adds `extra` accept handles (see fanOutAccepts); a helper that cannot
 * run is logged and the listener serves with its one handle.
 */
export function listenFanned(server: Server, { host, port }: { host: string; port: number }, extra: number, logger: Logger): Promise<{ address: AddressInfo; fan: AcceptFan }> {
  const onFailure = (error: Error): void => logger.warn({ error: errorSummary(error) }, 'no extra accept handles: new connections are accepted one per event-loop turn');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      void fanOutAccepts(server, extra, onFailure).then((fan) => resolve({ address, fan }));
    });
  });
}
