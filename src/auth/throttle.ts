import { isIPv4, isIPv6 } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { InvalidCredentials } from './types.js';

export interface FailureThrottleOptions {
  /** The first failure's delay (default 250 ms); each further one doubles it... */
  readonly baseMs?: number;
  /** ...up to this (default 10 s). */
  readonly maxMs?: number;
  /** An address with no failure for this long starts over (default 60 s; longer than maxMs). */
  readonly quietMs?: number;
  /** Addresses remembered at most (default 10 000); past it, the one that failed longest ago is forgotten. */
  readonly maxAddresses?: number;
  /** Attempts of one failing address waiting their turn at most (default 32); more are refused unchecked. */
  readonly maxWaiting?: number;
  readonly now?: () => number;
  /** How a delay is waited out; tests pass their own. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Once per address, when its delay first reaches maxMs: someone is guessing. */
  readonly onCapReached?: (address: string) => void;
}

interface AddressState {
  failures: number;
  lastFailure: number;
  /** Settles when the attempt last in line (and its penalty) is done. */
  tail: Promise<void>;
  waiting: number;
}

/**
 * Failed authentication costs its source address a growing delay. Attempts of an address that has
 * failed recently run one after another, each failure waiting out its delay before it answers, so
 * a burst of guesses from one address is checked one guess per delay however many connections it
 * opens, and costs the CPU one password check at a time. Every wait is a timer on that request
 * alone: other addresses, and addresses that never failed, run as if nothing happened.
 */
export class FailureThrottle {
  readonly #states = new Map<string, AddressState>();
  readonly #o: Required<Omit<FailureThrottleOptions, 'onCapReached'>> & Pick<FailureThrottleOptions, 'onCapReached'>;

  constructor(options: FailureThrottleOptions = {}) {
    this.#o = {
      baseMs: options.baseMs ?? 250,
      maxMs: options.maxMs ?? 10_000,
      quietMs: options.quietMs ?? 60_000,
      maxAddresses: options.maxAddresses ?? 10_000,
      maxWaiting: options.maxWaiting ?? 32,
      now: options.now ?? Date.now,
      sleep: options.sleep ?? ((ms) => delay(ms)),
      onCapReached: options.onCapReached,
    };
  }

  /** Addresses with failures remembered. */
  get tracked(): number {
    return this.#states.size;
  }

  /** What the next failure from this address would cost; 0 when it has none recorded. */
  penaltyOf(address: string | undefined): number {
    const state = this.#live(throttleKey(address));
    return state === undefined ? 0 : this.#delay(state.failures + 1);
  }

  /** Runs `attempt` in the address's turn; an InvalidCredentials from it costs the delay before it is rethrown. */
  async run<T>(address: string | undefined, attempt: () => Promise<T>): Promise<T> {
    const key = throttleKey(address);
    const state = this.#live(key);
    if (state === undefined) return this.#attempt(key, attempt);
    if (state.waiting >= this.#o.maxWaiting) throw new InvalidCredentials('too many authentication attempts from this address at once');
    const before = state.tail;
    let release!: () => void;
    state.tail = new Promise<void>((resolve) => (release = resolve));
    state.waiting++;
    try {
      await before;
    } finally {
      state.waiting--;
    }
    try {
      return await this.#attempt(key, attempt);
    } finally {
      release();
    }
  }

  async #attempt<T>(key: string, attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof InvalidCredentials)) throw err;
      const { state, penalty } = this.#fail(key);
      // An attempt that ran before the address had failed holds no turn: make later ones wait for this penalty too.
      const tail = state.tail;
      const paid = this.#o.sleep(penalty);
      state.tail = Promise.all([tail, paid]).then(() => {});
      await paid;
      throw err;
    }
  }

  #fail(key: string): { state: AddressState; penalty: number } {
    const now = this.#o.now();
    let state = this.#live(key);
    if (state === undefined) state = { failures: 0, lastFailure: now, tail: Promise.resolve(), waiting: 0 };
    // Re-inserted, so the map's order is "failed longest ago first": the one to forget when full.
    this.#states.delete(key);
    while (this.#states.size >= this.#o.maxAddresses) {
      const oldest = this.#states.keys().next().value;
      if (oldest === undefined) break;
      this.#states.delete(oldest);
    }
    state.failures++;
    state.lastFailure = now;
    this.#states.set(key, state);
    const penalty = this.#delay(state.failures);
    if (penalty === this.#o.maxMs && this.#delay(state.failures - 1) < this.#o.maxMs) this.#o.onCapReached?.(key);
    return { state, penalty };
  }

  /** The address's state, unless it has been quiet long enough to start over. */
  #live(key: string): AddressState | undefined {
    const state = this.#states.get(key);
    if (state === undefined) return undefined;
    if (this.#o.now() - state.lastFailure < this.#o.quietMs) return state;
    this.#states.delete(key);
    return undefined;
  }

  #delay(failures: number): number {
    if (failures <= 0) return 0;
    return Math.min(this.#o.maxMs, this.#o.baseMs * 2 ** Math.min(failures - 1, 30));
  }
}

/**
 * What failures are counted by: the IPv4 address (also when it arrives IPv4-mapped), or the /64 of
 * an IPv6 address, which one client holds as a whole and could otherwise rotate through.
 */
export function throttleKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (isIPv4(address)) return address;
  const bare = address.split('%')[0] ?? address;
  if (!isIPv6(bare)) return address;
  const [head = '', tail = ''] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = bare.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = bare.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
