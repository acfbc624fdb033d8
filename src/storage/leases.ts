import { randomUUID } from 'node:crypto';
import { MemoryLeases, type Lease, type Leases } from '../concurrency/index.js';

// Metadata stores pick one of the two; storage/metadata reaches the in-memory kind through here.
export { MemoryLeases, type Lease, type Leases };

/** The two commands leases need, as node-redis (under @keyv/redis) spells them. */
export interface LeaseClient {
  set(key: string, value: string, options: { condition: 'NX'; expiration: { type: 'PX'; value: number } }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

// Compare-and-act in one server-side step: only the token's owner renews or deletes the key.
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * Leases on the Redis that holds the shared metadata: `SET key token NX PX ttl` takes one, and it
 * expires by itself when its holder dies. Keys live under the deployment's namespace.
 */
export class RedisLeases implements Leases {
  readonly shared = true;

  constructor(
    private readonly client: LeaseClient,
    private readonly namespace: string,
  ) {}

  async tryAcquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const redisKey = `${this.namespace}:lease:${key}`;
    const token = randomUUID();
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const taken = await this.client.set(redisKey, token, { condition: 'NX', expiration: { type: 'PX', value: ttl } });
    if (taken !== 'OK') return undefined;
    let released = false;
    return {
      key,
      renew: async (ms) => Number(await this.client.eval(RENEW, { keys: [redisKey], arguments: [token, String(Math.max(1, Math.ceil(ms)))] })) === 1,
      release: async () => {
        if (released) return;
        released = true;
        await this.client.eval(RELEASE, { keys: [redisKey], arguments: [token] });
      },
    };
  }
}
