import KeyvRedis, { createClient } from '@keyv/redis';
import { MetadataUnavailableError } from '../errors.js';
import { RedisLeases } from '../leases.js';
import type { MetadataKvStore } from './metadata-store.js';

export interface RedisKvStoreOptions {
  readonly url: string;
  /** The URL as it may be shown (password replaced); used in every error message. */
  readonly displayUrl: string;
  /** How long open() tries before giving up. Default 3000 ms. */
  readonly connectTimeoutMs?: number;
  /** Told once when an established connection is lost (with why) and once when it is back. */
  readonly onConnectionChange?: (up: boolean, reason: string | undefined) => void;
}

/** Between reconnect attempts once connected: quick enough to recover, slow enough not to spin. */
const MAX_BACKOFF_MS = 2000;

/**
 * @keyv/redis with a client of our own making, because its defaults do not suit a server:
 * - commands are refused at once while disconnected (no offline queue), so a pull fails with a
 *   clear error and /readyz says why, instead of hanging until Redis returns;
 * - open() gives up after `connectTimeoutMs` (a clear start-up error), while after the first
 *   connection the client reconnects for ever with a capped backoff (recovery without a restart).
 */
export function createRedisKvStore(options: RedisKvStoreOptions): MetadataKvStore {
  let connectedOnce = false;
  let openDeadline = 0;
  let lastError: string | undefined;
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.min(options.connectTimeoutMs ?? 3000, 5000),
      reconnectStrategy: (retries: number) => {
        if (!connectedOnce && Date.now() >= openDeadline) return new Error(lastError ?? 'no answer');
        return Math.min(100 * 2 ** retries, MAX_BACKOFF_MS);
      },
    },
  });
  // Without a listener the client's 'error' event would be thrown; the reason is kept for messages.
  let lost = false;
  client.on('error', (err: unknown) => {
    lastError = describe(err);
    if (connectedOnce && !lost) {
      lost = true;
      options.onConnectionChange?.(false, lastError);
    }
  });
  client.on('ready', () => {
    connectedOnce = true;
    lastError = undefined;
    if (lost) {
      lost = false;
      options.onConnectionChange?.(true, undefined);
    }
  });
  // @keyv/redis's types accept its own client type; this is that client, built by its own createClient.
  const adapter = new KeyvRedis(client as never, { throwOnErrors: true, throwOnConnectError: true });
  const store = adapter as unknown as MetadataKvStore;
  store.open = async () => {
    if (client.isReady) return;
    openDeadline = Date.now() + (options.connectTimeoutMs ?? 3000);
    try {
      await client.connect();
    } catch (cause) {
      throw new MetadataUnavailableError(`cannot reach the Redis metadata store at ${options.displayUrl}: ${lastError ?? describe(cause)}`, { cause });
    }
  };
  // The same connection: a lease is as reachable as the records it guards.
  store.leases = (namespace) => new RedisLeases(client, namespace);
  store.describeError = (err: unknown) =>
    client.isReady
      ? { reason: describe(err), unavailable: false }
      : { reason: `Redis at ${options.displayUrl} is unreachable (${lastError ?? describe(err)})`, unavailable: true };
  return store;
}

/** A code says enough and carries no secret; messages of node-redis name only host and port. */
function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}
