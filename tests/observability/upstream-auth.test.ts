import t from 'tap';
import { createLogger, LogLimiter, Metrics, UpstreamAuthWatch } from '../../src/observability/index.js';

t.test('one warn line per upstream and minute, the next one says how many were held back; recovery said once', async (t) => {
  let now = 1_000_000;
  const lines: { level: string; msg: string; upstream: string; suppressed?: number }[] = [];
  const logger = createLogger('debug', { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
  const metrics = new Metrics({ defaultMetrics: false, now: () => now });
  const watch = new UpstreamAuthWatch(metrics, logger, new LogLimiter(() => now));
  for (let i = 0; i < 3; i++) watch.authFailed('a.example', 'rejected', 'token realm https://auth.a.example/token rejected the configured credentials (401)');
  watch.authFailed('b.example', 'withheld', 'GET https://b.example/v2/x/manifests/1: 401: withheld');
  t.same(
    lines.map((l) => [l.level, l.upstream]),
    [
      ['warn', 'a.example'],
      ['warn', 'b.example'],
    ],
    'one line per upstream',
  );
  t.match(lines[0]?.msg, /^the mirror's credentials for a\.example were rejected \(check upstreams\.a\.example username and password\): token realm/);
  t.match(lines[1]?.msg, /^the mirror's credentials for b\.example were withheld from a token realm outside the upstream's domain/);
  now += 60_000;
  watch.authFailed('a.example', 'rejected', 'again');
  t.match(lines[2], { level: 'warn', suppressed: 2, msg: /\(and 2 more like it in the last minute\)$/ });
  t.equal(metrics.tracker.upstreams.get('a.example')?.authFailure?.message, 'again', 'the status shows the latest');

  watch.authSucceeded('a.example');
  watch.authSucceeded('a.example');
  watch.authSucceeded('never-failed.example');
  t.same(
    lines.slice(3).map((l) => [l.level, l.msg]),
    [['info', "the mirror's credentials for a.example work again"]],
  );
  t.equal(metrics.tracker.upstreams.get('a.example')?.authFailure, undefined);
  const text = (await metrics.exposition()).body;
  t.match(text, /regmirror_upstream_auth_failures_total\{upstream="a\.example",reason="rejected"\} 4/);
  t.match(text, /regmirror_upstream_auth_failures_total\{upstream="b\.example",reason="withheld"\} 1/);
});
