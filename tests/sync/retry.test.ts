import t from 'tap';
import { UpstreamError } from '../../src/upstream/index.js';
import { withRetry, type RetryPolicy } from '../../src/sync/rate-limit.js';

/** Records the pauses instead of sleeping. */
function policy(overrides: Partial<RetryPolicy> = {}): RetryPolicy & { pauses: number[] } {
  const pauses: number[] = [];
  return { retries: 3, maxRetryAfterMs: 60_000, baseDelayMs: 1000, sleep: async (ms) => void pauses.push(ms), ...overrides, pauses };
}

/** A task that fails with each of `errors` in turn, then returns 'ok'. */
function failing(...errors: Error[]): { task: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return { task: async () => (errors[calls++] === undefined ? 'ok' : Promise.reject(errors[calls - 1])), calls: () => calls };
}

const limited = (retryAfter?: number) => new UpstreamError('hub', 'rate-limited', 'too many requests', retryAfter === undefined ? { status: 429 } : { status: 429, retryAfter });
const down = () => new UpstreamError('hub', 'unavailable', 'service unavailable', { status: 503 });

t.test('rate-limited and unavailable calls are retried: Retry-After first, else doubling backoff', async (t) => {
  const p = policy();
  const f = failing(limited(5), down(), down());
  t.equal(await withRetry(f.task, p), 'ok');
  t.equal(f.calls(), 4);
  t.same(p.pauses, [5000, 2000, 4000]);
});

t.test('gives up after `retries`, or when upstream asks to wait longer than allowed', async (t) => {
  const p = policy({ retries: 1 });
  await t.rejects(withRetry(failing(down(), down()).task, p), /service unavailable/);
  t.same(p.pauses, [1000]);
  const q = policy({ maxRetryAfterMs: 10_000 });
  await t.rejects(withRetry(failing(limited(11)).task, q), /too many requests/);
  t.same(q.pauses, [], 'no pause before giving up');
});

t.test('other failures are final', async (t) => {
  const p = policy();
  const f = failing(new UpstreamError('hub', 'not-found', 'no such manifest', { status: 404 }));
  await t.rejects(withRetry(f.task, p), /no such manifest/);
  const g = failing(new Error('a bug'));
  await t.rejects(withRetry(g.task, p), /a bug/);
  t.same([f.calls(), g.calls()], [1, 1]);
  t.same(p.pauses, []);
});

t.test('a host name that does not resolve is not retried: a typo, not an outage', async (t) => {
  const typo = failing(new UpstreamError('hub', 'unavailable', 'GET http://typo.invalid/v2/: ENOTFOUND', { code: 'ENOTFOUND' }));
  const p = policy();
  await t.rejects(withRetry(typo.task, p), { name: 'UpstreamError', message: /ENOTFOUND/ });
  t.equal(typo.calls(), 1);
  t.same(p.pauses, []);
  const refused = failing(new UpstreamError('hub', 'unavailable', 'GET http://127.0.0.1:9/v2/: ECONNREFUSED', { code: 'ECONNREFUSED' }));
  t.equal(await withRetry(refused.task, policy()), 'ok', 'a refused connection may come back');
});
