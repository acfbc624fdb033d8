import type { Logger } from 'pino';
import { LogLimiter } from './log-limiter.js';
import type { Metrics } from './metrics.js';

/**
 * Tells the operator the mirror's own credentials for an upstream stopped working: counted and shown
 * as state `auth-failed` on every failure (metrics), and one `warn` line per upstream per window,
 * whoever asked (a client, sync, an export): every pull through that upstream fails the same way, so
 * one line a minute says it all. One `info` line when a credentialed request succeeds again.
 */
export class UpstreamAuthWatch {
  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly limiter: LogLimiter = new LogLimiter(),
  ) {}

  authFailed(upstream: string, reason: 'rejected' | 'withheld', detail: string): void {
    this.metrics.authFailed(upstream, reason, detail);
    const suppressed = this.limiter.admit(`auth\u0000${upstream}`);
    if (suppressed === undefined) return;
    const what =
      reason === 'rejected'
        ? `the mirror's credentials for ${upstream} were rejected (check upstreams.${upstream} username and password)`
        : `the mirror's credentials for ${upstream} were withheld from a token realm outside the upstream's domain (or not https)`;
    const more = suppressed > 0 ? ` (and ${suppressed} more like it in the last minute)` : '';
    this.logger.warn({ upstream, reason, detail, ...(suppressed > 0 ? { suppressed } : {}) }, `${what}: ${detail}${more}`);
  }

  authSucceeded(upstream: string): void {
    if (this.metrics.authSucceeded(upstream)) this.logger.info({ upstream }, `the mirror's credentials for ${upstream} work again`);
  }
}
