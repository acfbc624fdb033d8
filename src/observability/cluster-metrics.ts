import { Counter, type Registry } from 'prom-client';
import type { ClusterObserver, FallbackReason, ManifestFetchOutcome, MemberState } from '../cluster/index.js';

const REASONS: readonly FallbackReason[] = ['unreachable', 'refused', 'broke', 'mismatch'];
const MANIFEST_OUTCOMES: readonly ManifestFetchOutcome[] = ['hit', 'unreachable', 'refused', 'mismatch'];

/** What `/api/status` says of the cluster: every member as this replica sees it, and this replica's peer traffic. */
export interface ClusterStatus {
  readonly members: readonly {
    readonly url: string;
    readonly self: boolean;
    readonly live: boolean;
    readonly lastSeen: string | null;
    readonly lastError: { readonly at: string; readonly cause: string } | null;
  }[];
  readonly peerHits: number;
  readonly peerMisses: number;
  readonly bytesFromPeers: number;
  readonly bytesFromUpstream: number;
  readonly fallbacks: number;
  readonly forwardedServed: number;
  /** Manifests by digest the owner answered, and those the upstream answered instead. */
  readonly manifestPeerHits: number;
  readonly manifestFallbacks: number;
}

/** The cluster's metrics, on the Metrics registry (zero-valued series from the start, for rate() and ratios). */
export class ClusterMetrics implements ClusterObserver {
  readonly peerFetches: Counter<string>;
  readonly blobBytesTotal: Counter<string>;
  readonly fallbacks: Counter<string>;
  readonly forwarded: Counter<string>;
  readonly manifestFetches: Counter<string>;
  readonly forwardedManifests: Counter<string>;

  constructor(registry: Registry) {
    const counter = (name: string, help: string, label: string, values: readonly string[]) => {
      const c = new Counter({ name, help, labelNames: [label], registers: [registry] });
      for (const v of values) c.labels(v).inc(0);
      return c;
    };
    this.peerFetches = counter('regmirror_cluster_peer_fetches_total', 'Blobs this replica does not own, asked of their owner, by outcome (hit: it answered, miss: it could not).', 'outcome', ['hit', 'miss']);
    this.blobBytesTotal = counter('regmirror_cluster_blob_bytes_total', 'Blob bytes downloaded by this replica, by where they came from (peer|upstream).', 'from', ['peer', 'upstream']);
    this.fallbacks = counter('regmirror_cluster_fallbacks_total', 'Blobs a peer owns that the upstream served instead, by reason (unreachable|refused|broke: mid-stream|mismatch: wrong bytes).', 'reason', REASONS);
    this.forwarded = counter('regmirror_cluster_forwarded_requests_total', "Peers' requests for blobs this replica owns, by outcome (ok|error).", 'outcome', ['ok', 'error']);
    this.manifestFetches = counter(
      'regmirror_cluster_manifest_fetches_total',
      'Manifests by digest this replica does not own, asked of their owner, by outcome (hit, or why the upstream was asked instead: unreachable|refused|mismatch).',
      'outcome',
      MANIFEST_OUTCOMES,
    );
    this.forwardedManifests = counter('regmirror_cluster_forwarded_manifests_total', "Peers' requests for manifests this replica owns, by outcome (ok|error).", 'outcome', ['ok', 'error']);
  }

  peerFetch(outcome: 'hit' | 'miss'): void {
    this.peerFetches.labels(outcome).inc();
  }

  blobBytes(from: 'peer' | 'upstream', bytes: number): void {
    this.blobBytesTotal.labels(from).inc(bytes);
  }

  peerFallback(reason: FallbackReason): void {
    this.fallbacks.labels(reason).inc();
  }

  forwardedServed(outcome: 'ok' | 'error'): void {
    this.forwarded.labels(outcome).inc();
  }

  manifestFetch(outcome: ManifestFetchOutcome): void {
    this.manifestFetches.labels(outcome).inc();
  }

  forwardedManifest(outcome: 'ok' | 'error'): void {
    this.forwardedManifests.labels(outcome).inc();
  }

  async status(members: readonly MemberState[]): Promise<ClusterStatus> {
    const count = async (c: Counter<string>, label?: string, value?: string) =>
      (await c.get()).values.filter((v) => label === undefined || v.labels[label] === value).reduce((n, v) => n + v.value, 0);
    const iso = (at: number | undefined) => (at === undefined ? null : new Date(at).toISOString());
    return {
      members: members.map((m) => ({ url: m.url, self: m.self, live: m.live, lastSeen: iso(m.lastSeen), lastError: m.lastError === undefined ? null : { at: iso(m.lastError.at)!, cause: m.lastError.cause } })),
      peerHits: await count(this.peerFetches, 'outcome', 'hit'),
      peerMisses: await count(this.peerFetches, 'outcome', 'miss'),
      bytesFromPeers: await count(this.blobBytesTotal, 'from', 'peer'),
      bytesFromUpstream: await count(this.blobBytesTotal, 'from', 'upstream'),
      fallbacks: await count(this.fallbacks),
      forwardedServed: await count(this.forwarded, 'outcome', 'ok'),
      manifestPeerHits: await count(this.manifestFetches, 'outcome', 'hit'),
      manifestFallbacks: (await count(this.manifestFetches)) - (await count(this.manifestFetches, 'outcome', 'hit')),
    };
  }
}
