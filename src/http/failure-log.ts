import type { Logger } from 'pino';
import { errorSummary, type LogLimiter } from '../observability/index.js';
import { failureCause, failureLine, UpstreamError } from '../upstream/index.js';
import type { ErrorAnswer } from './errors.js';

/**
 * The `warn` line that says why the mirror answered a 5xx: which upstream, which URL (no secrets) and
 * the cause (ENOTFOUND, ECONNREFUSED, HTTP 503, …), once per upstream and cause per window. Clients
 * only get "upstream X is unreachable"; the operator needs the address and the code. Unexpected errors
 * are not repeated here: they already have their own `error` line with a stack.
 */
export function logServerFailure(logger: Logger, limiter: LogLimiter, err: unknown, answer: ErrorAnswer, requestId: string): void {
  if (answer.status < 500 || answer.unexpected) return;
  // Refused or withheld credentials have their own line per upstream, whoever asked (sync too): src/observability/upstream-auth.ts.
  if (err instanceof UpstreamError && (err.details.credentials === 'rejected' || err.details.credentials === 'withheld')) return;
  const fields =
    err instanceof UpstreamError
      ? { upstream: err.upstream, url: err.details.url, cause: failureCause(err), line: `upstream ${err.upstream}: ${failureLine(err)}` }
      : { upstream: undefined, url: undefined, cause: errorSummary(err).type, line: answer.message };
  const suppressed = limiter.admit(`${fields.upstream ?? ''}\u0000${fields.cause}`);
  if (suppressed === undefined) return;
  logger.warn(
    { requestId, status: answer.status, upstream: fields.upstream, url: fields.url, cause: fields.cause, ...(suppressed > 0 ? { suppressed } : {}) },
    `answered ${answer.status}: ${fields.line}${suppressed > 0 ? ` (and ${suppressed} more like it in the last minute)` : ''}`,
  );
}
