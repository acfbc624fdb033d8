import { promises as dns } from 'node:dns';
import { ownerOf } from './rendezvous.js';

/** One replica as this one sees it: what `/api/status` lists. */
export interface MemberState {
  readonly url: string;
  /** This replica. */
  readonly self: boolean;
  /** Answers /readyz, so it owns its share of the digests. */
  readonly live: boolean;
  /** ms since epoch of its last ready answer. */
  readonly lastSeen: number | undefined;
  readonly lastError: { readonly at: number; readonly cause: string } | undefined;
}

/** A name's addresses (A and AAAA records). */
export type Resolve = (host: string) => Promise<string[]>;

export interface MembershipOptions {
  /** This replica's URL; may be set once it listens (derived from the bound port). */
  readonly self?: string;
  /** A static member list (`cluster.peers`). */
  readonly peers?: readonly string[];
  /** A headless Service re-resolved at every refresh (`cluster.dns`); its records become `http://<address>:<port>`. */
  readonly dns?: { readonly host: string; readonly port: number };
  readonly resolve?: Resolve;
  /** Resolves when a peer is ready; the default asks its /readyz (src/cluster/peer-client.ts). */
  readonly probe: (url: string) => Promise<void>;
  readonly intervalMs: number;
  readonly now?: () => number;
  readonly log?: (fields: Record<string, unknown>, message: string) => void;
}

interface Peer {
  live: boolean;
  lastSeen: number | undefined;
  lastError: { at: number; cause: string } | undefined;
}

/**
 * Who takes part: this replica plus the configured or resolved peers that answer /readyz. Every
 * replica ranks the same live list with the same hash, so they agree on each digest's owner
 * without talking to each other; while they disagree (a probe apart) a forwarded request is served
 * anyway, one hop only, so the worst case is one more upstream fetch.
 */
export class Membership {
  #self: string | undefined;
  readonly #peers = new Map<string, Peer>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  readonly #now: () => number;

  constructor(private readonly options: MembershipOptions) {
    this.#self = options.self;
    this.#now = options.now ?? Date.now;
    this.setPeers(options.peers ?? []);
  }

  get self(): string | undefined {
    return this.#self;
  }

  setSelf(url: string): void {
    this.#self = url;
    this.#peers.delete(url);
  }

  /** Replaces the peer list; peers already known keep their state, new ones wait for their first probe. */
  setPeers(urls: readonly string[]): void {
    const wanted = new Set(urls.filter((u) => u !== this.#self));
    for (const url of this.#peers.keys()) if (!wanted.has(url)) this.#peers.delete(url);
    for (const url of wanted) if (!this.#peers.has(url)) this.#peers.set(url, { live: false, lastSeen: undefined, lastError: undefined });
  }

  /** Live members, this replica included, sorted. */
  members(): string[] {
    const live = [...this.#peers].filter(([, p]) => p.live).map(([url]) => url);
    return (this.#self === undefined ? live : [...live, this.#self]).sort();
  }

  /** The live member that owns a digest. */
  ownerOf(key: string): string | undefined {
    return ownerOf(key, this.members());
  }

  /** A request to a peer failed to connect: it stops owning anything until a probe finds it ready again. */
  failed(url: string, cause: string): void {
    const peer = this.#peers.get(url);
    if (peer === undefined) return;
    peer.live = false;
    peer.lastError = { at: this.#now(), cause };
  }

  states(): MemberState[] {
    const self: MemberState[] = this.#self === undefined ? [] : [{ url: this.#self, self: true, live: true, lastSeen: this.#now(), lastError: undefined }];
    const peers = [...this.#peers].map(([url, p]) => ({ url, self: false, ...p }));
    return [...self, ...peers].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  }

  /** Re-resolves `dns` and probes every peer; concurrent calls share one round. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#round().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #round(): Promise<void> {
    const { dns: service } = this.options;
    if (service !== undefined) {
      try {
        const addresses = await (this.options.resolve ?? resolveAll)(service.host);
        this.setPeers(addresses.map((a) => `http://${a.includes(':') ? `[${a}]` : a}:${service.port}`));
      } catch (err) {
        // A DNS blip keeps the members known so far rather than dropping them all.
        this.options.log?.({ host: service.host, error: causeOf(err) }, 'resolving cluster.dns failed; keeping the members known so far');
      }
    }
    await Promise.all(
      [...this.#peers].map(async ([url, peer]) => {
        try {
          await this.options.probe(url);
          if (!peer.live) this.options.log?.({ peer: url }, 'cluster peer is ready: it takes part');
          peer.live = true;
          peer.lastSeen = this.#now();
        } catch (err) {
          if (peer.live) this.options.log?.({ peer: url, error: causeOf(err) }, 'cluster peer is not ready: its blobs go to the others');
          peer.live = false;
          peer.lastError = { at: this.#now(), cause: causeOf(err) };
        }
      }),
    );
  }

  start(): void {
    if (this.#timer !== undefined) return;
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.options.intervalMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** A and AAAA records; a family the name lacks is no error. */
async function resolveAll(host: string): Promise<string[]> {
  const [v4, v6] = await Promise.allSettled([dns.resolve4(host), dns.resolve6(host)]);
  if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason;
  return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
}

export function causeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}
