import { Counter, Gauge, type Registry } from 'prom-client';
import type { EndpointReport } from '../upstream/index.js';

/** One endpoint of an upstream with `endpoints`, as `/api/status` shows it. */
export interface EndpointStatus {
  /** Origin and path; config allows no credentials or query in it. */
  readonly url: string;
  readonly state: 'up' | 'cooling';
  /** When it is asked again (while cooling). */
  readonly until: string | null;
  readonly lastError: { readonly at: string; readonly cause: string } | null;
}

/**
 * The endpoints of upstreams with fallbacks: the last report of each, and their metrics. Whether one
 * is cooling is read against the clock when asked, since a cooldown ends without an event.
 */
export class EndpointStates {
  private readonly latest = new Map<string, EndpointReport[]>();
  private readonly failures: Counter<string>;

  constructor(
    registry: Registry,
    private readonly now: () => number,
  ) {
    this.failures = new Counter({
      name: 'regmirror_upstream_endpoint_failures_total',
      help: 'Times an endpoint of an upstream with fallbacks failed (no answer, 5xx, 429, wrong content) and was set cooling.',
      labelNames: ['upstream', 'endpoint'],
      registers: [registry],
    });
    const up: Gauge<string> = new Gauge({
      name: 'regmirror_upstream_endpoint_up',
      help: '1 while an endpoint of an upstream with fallbacks is asked first in its turn, 0 while it is cooling off after a failure.',
      labelNames: ['upstream', 'endpoint'],
      registers: [registry],
      collect: (): void => {
        for (const [upstream, reports] of this.latest) for (const r of reports) up.labels(upstream, r.endpoint).set(this.cooling(r) ? 0 : 1);
      },
    });
  }

  report(r: EndpointReport): void {
    let list = this.latest.get(r.upstream);
    if (list === undefined) this.latest.set(r.upstream, (list = []));
    list[r.index] = r;
    const failures = this.failures.labels(r.upstream, r.endpoint);
    if (r.coolingUntil !== undefined) failures.inc();
    else failures.inc(0);
  }

  /** [] for an upstream with a single URL. */
  of(upstream: string): EndpointStatus[] {
    const iso = (ms: number) => new Date(ms).toISOString();
    return (this.latest.get(upstream) ?? []).map((r) => ({
      url: r.endpoint,
      state: this.cooling(r) ? 'cooling' : 'up',
      until: this.cooling(r) && r.coolingUntil !== undefined ? iso(r.coolingUntil) : null,
      lastError: r.lastError === undefined ? null : { at: iso(r.lastError.at), cause: r.lastError.cause },
    }));
  }

  private cooling(r: EndpointReport): boolean {
    return r.coolingUntil !== undefined && r.coolingUntil > this.now();
  }
}
