import t from 'tap';
import { prettyLine } from '../../src/observability/pretty-log.js';
import { createLogger } from '../../src/observability/index.js';
import { prettyDestination } from '../../src/observability/logger.js';

const TIME = '2026-12-06T09:01:07.123Z';
const at = new Date(TIME);
const HHMMSS = [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
const DIGEST = `sha256:27b3${'a'.repeat(60)}`;
const request = (extra: Record<string, unknown>) =>
  JSON.stringify({ level: 'info', time: TIME, service: 'regmirror', msg: 'request', requestId: 'r1', method: 'GET', route: 'blob', upstream: 'docker.io', repository: 'library/alpine', reference: DIGEST, status: 200, bytes: 3040870, source: 'cache', durationMs: 5, client: '10.0.3.7', userAgent: 'containerd/1.6.20+unknown', ...extra });

t.test('a request is one line: time, method, route, image, reference, status, size, cache, duration, client', async (t) => {
  t.equal(prettyLine(request({}), { color: false }), `${HHMMSS} GET blob library/alpine sha256:27b3… 200 2.9MiB hit 5ms 10.0.3.7 containerd/1.6\n`);
  t.equal(
    prettyLine(request({ upstream: 'ghcr.io', repository: 'team/app', reference: '1.2', route: 'manifest', source: 'upstream', bytes: 1234, durationMs: 1530, userAgent: 'docker/24.0.5 go/go1.20.6 os/linux' }), { color: false }),
    `${HHMMSS} GET manifest ghcr.io/team/app 1.2 200 1.2KiB miss 1.5s 10.0.3.7 docker/24.0\n`,
    'other upstreams by host; docker names itself first in its User-Agent',
  );
  t.equal(
    prettyLine(request({ status: 200, bytes: 54 * 1024 * 1024, aborted: true, source: 'inflight', durationMs: 95_000, userAgent: undefined }), { color: false }),
    `${HHMMSS} GET blob library/alpine sha256:27b3… 200 54.0MiB joined aborted 1m35s 10.0.3.7\n`,
    'a cut transfer says so, with the bytes that went out',
  );
  t.equal(
    prettyLine(JSON.stringify({ level: 'debug', time: TIME, msg: 'request', method: 'GET', route: 'healthz', status: 200, durationMs: 0, listener: 'metrics' }), { color: false }),
    `${HHMMSS} GET healthz 200 0ms listener=metrics\n`,
  );
  t.match(prettyLine(request({ status: 503 }), { color: true }), /\x1b\[31m503\x1b\[0m/, 'a 5xx in red');
});

t.test('other lines: level word, message, then the fields on the same line', async (t) => {
  const line = prettyLine(JSON.stringify({ level: 'warn', time: TIME, service: 'regmirror', msg: 'metadata store unreachable', reason: 'ECONNREFUSED', detail: { retries: 3 }, note: 'two words' }), { color: false });
  t.equal(line, `${HHMMSS} WARN  metadata store unreachable reason=ECONNREFUSED detail={"retries":3} note="two words"\n`);
  t.equal(prettyLine('{"event":"request","principal":"alice"}\n', { color: false }), '{"event":"request","principal":"alice"}\n', 'an audit line on the same stdout stays JSON');
  t.equal(prettyLine('not json', { color: false }), 'not json');
});

t.test('through the logger: every line one line, secrets still redacted', async (t) => {
  const out: string[] = [];
  const logger = createLogger('info', prettyDestination({ write: (s: string) => void out.push(s) }, false));
  logger.info({ config: { upstreams: { 'ghcr.io': { password: 'hunter2' } } } }, 'regmirror listening');
  t.equal(out.length, 1);
  t.equal(out[0]!.split('\n').length, 2, 'one line and its newline');
  t.match(out[0], /INFO  regmirror listening config=\{"upstreams":\{"ghcr.io":\{"password":"\[redacted\]"\}\}\}/);
  t.notMatch(out[0], /hunter2/);
});
