import { LRUCache } from 'lru-cache';
import { UpstreamError } from '../upstream/index.js';
import type { MirrorObserver } from './observer.js';
import type { RepoRef } from './types.js';

/**
 * References remembered at most. An entry is a key and a short message (~300 B), so the bound is a few
 * MiB however many missing names crash-looping pods ask for; the least recently asked go first.
 */
const MAX_ENTRIES = 10_000;

/**
 * How often, at most, `remember` drops every expired entry. Without it an expired entry went only when
 * asked for again or pushed out, so a steady trickle of never-repeated names (scanners, typos) held all
 * 10,000 (~17 MiB of RSS measured with 20,000 such 404s) instead of the few the TTL keeps fresh.
 */
const PURGE_EVERY_MS = 10_000;

interface Remembered {
  readonly until: number;
  readonly message: string;
  readonly details: UpstreamError['details'];
}

/**
 * Upstream's recent "not found" answers, per (upstream, repository, reference), kept for the upstream's
 * `notFoundTTL`: a pod in CrashLoopBackOff asking for a tag that does not exist costs the upstream one
 * request per TTL instead of one per restart (and Docker Hub counts them against the pull limit). The
 * remembered answer is rethrown as the same error, marked `remembered`, so clients see the same 404.
 * In-process only: with shared (Redis) metadata each replica remembers its own, which at worst costs
 * one request per replica per TTL. Anything that finds the content (a later fetch, a sync) forgets it.
 */
export class NotFoundMemory {
  readonly #entries = new LRUCache<string, Remembered>({ max: MAX_ENTRIES });
  #nextPurge = 0;

  constructor(
    /** The upstream's notFoundTTL in ms; 0 remembers nothing. */
    private readonly ttlMs: (upstream: string) => number,
    private readonly now: () => number,
  ) {}

  /** The remembered not-found for this reference while it is fresh, as a new error to throw. */
  recall(ref: RepoRef, reference: string): UpstreamError | undefined {
    const key = keyOf(ref, reference);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.until) {
      this.#entries.delete(key);
      return undefined;
    }
    return new UpstreamError(ref.upstream, 'not-found', entry.message, { ...entry.details, remembered: true });
  }

  /**
   * Runs `work` (an upstream call for this reference): a not-found is remembered before it is rethrown,
   * a success forgets an older not-found (a sync bypassed it, or it expired and the content appeared).
   */
  async track<T>(ref: RepoRef, reference: string, work: () => Promise<T>): Promise<T> {
    try {
      const value = await work();
      this.#entries.delete(keyOf(ref, reference));
      return value;
    } catch (err) {
      if (err instanceof UpstreamError && err.failure === 'not-found' && err.details.remembered !== true) this.remember(ref, reference, err);
      throw err;
    }
  }

  /** Entries held, fresh or not yet dropped. */
  get size(): number {
    return this.#entries.size;
  }

  private remember(ref: RepoRef, reference: string, err: UpstreamError): void {
    const ttl = this.ttlMs(ref.upstream);
    if (ttl <= 0) return;
    this.purgeExpired();
    // Only what the answer needs: the status and OCI code, never a cause object or a URL.
    const { status, ociCode } = err.details;
    this.#entries.set(keyOf(ref, reference), { until: this.now() + ttl, message: err.message, details: { status, ociCode } });
  }

  /** One pass over at most MAX_ENTRIES every PURGE_EVERY_MS: cheap next to the upstream 404 that led here. */
  private purgeExpired(): void {
    const now = this.now();
    if (now < this.#nextPurge) return;
    this.#nextPurge = now + PURGE_EVERY_MS;
    const expired: string[] = [];
    this.#entries.forEach((entry, key) => {
      if (now >= entry.until) expired.push(key);
    });
    for (const key of expired) this.#entries.delete(key);
  }
}

/** Throws upstream's remembered 404 for this reference, counted as a `negative` lookup of `kind`; nothing without a memory. */
export function throwRemembered(memory: NotFoundMemory | undefined, observer: MirrorObserver, kind: 'blob' | 'manifest', ref: RepoRef, reference: string): void {
  const remembered = memory?.recall(ref, reference);
  if (remembered === undefined) return;
  observer.cacheLookup(kind, 'negative');
  throw remembered;
}

/** `work` under the memory's track(), or as it is without one. */
export function tracked<T>(memory: NotFoundMemory | undefined, ref: RepoRef, reference: string, work: () => Promise<T>): Promise<T> {
  return memory === undefined ? work() : memory.track(ref, reference, work);
}

function keyOf(ref: RepoRef, reference: string): string {
  return `${ref.upstream}\u0000${ref.name}\u0000${reference}`;
}
