import { randomUUID } from 'node:crypto';

/**
 * A time-bounded right to do one piece of work (revalidate a tag, run a sync entry) that replicas
 * sharing a metadata store would otherwise all do. It expires by itself, so a holder that dies
 * frees the work for another one after `ttlMs` without any consensus of our own.
 */
export interface Lease {
  readonly key: string;
  /** Pushes expiry to `ttlMs` from now; false when the lease was lost (it expired and may be someone else's). */
  renew(ttlMs: number): Promise<boolean>;
  /** Gives it up at once, if it is still ours (never deletes a successor's). Safe twice. */
  release(): Promise<void>;
}

export interface Leases {
  /** Holders may live in other processes (Redis): waiting for one is worth it only then. */
  readonly shared: boolean;
  /** The lease when nobody holds `key`, undefined when someone does. Throws when the store cannot be asked. */
  tryAcquire(key: string, ttlMs: number): Promise<Lease | undefined>;
}

/** One process's leases (embedded metadata: there is no other replica to exclude). */
export class MemoryLeases implements Leases {
  readonly shared = false;
  readonly #held = new Map<string, { token: string; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async tryAcquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const current = this.#held.get(key);
    if (current !== undefined && current.expiresAt > this.now()) return undefined;
    const token = randomUUID();
    this.#held.set(key, { token, expiresAt: this.now() + ttlMs });
    const ours = () => this.#held.get(key)?.token === token && (this.#held.get(key)?.expiresAt ?? 0) > this.now();
    return {
      key,
      renew: async (ms) => {
        if (!ours()) return false;
        this.#held.set(key, { token, expiresAt: this.now() + ms });
        return true;
      },
      release: async () => {
        if (this.#held.get(key)?.token === token) this.#held.delete(key);
      },
    };
  }
}

/**
 * Runs `work` while holding `lease`, renewing it every third of `ttlMs` so a long run keeps it;
 * released at the end whatever happens. A failed renewal is told to `onLost` (the work goes on:
 * at worst another replica does it too).
 */
export async function whileHeld<T>(lease: Lease, ttlMs: number, work: () => Promise<T>, onLost?: (error: unknown) => void): Promise<T> {
  const timer = setInterval(() => {
    lease.renew(ttlMs).then(
      (kept) => (kept ? undefined : onLost?.(new Error(`lease ${lease.key} expired before it was renewed`))),
      (error: unknown) => onLost?.(error),
    );
  }, Math.max(10, Math.floor(ttlMs / 3)));
  timer.unref();
  try {
    return await work();
  } finally {
    clearInterval(timer);
    await lease.release().catch(() => undefined);
  }
}
