import t from 'tap';
import { Writable } from 'node:stream';
import { toErrorAnswer } from '../../src/http/index.js';
import { logServerFailure } from '../../src/http/failure-log.js';
import { createLogger, LogLimiter } from '../../src/observability/index.js';
import { MetadataUnavailableError } from '../../src/storage/index.js';
import { UpstreamError } from '../../src/upstream/index.js';

function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

t.test('the warn line for a 5xx: cause, URL, and how many like it were held back', async (t) => {
  let now = 0;
  const limiter = new LogLimiter(() => now);
  const { logger, lines } = capture();
  const down = new UpstreamError('up', 'unavailable', 'GET http://127.0.0.1:9/v2/: ECONNREFUSED', { code: 'ECONNREFUSED', url: 'http://127.0.0.1:9/v2/' });
  const answer = toErrorAnswer(down, 'manifest');
  for (let i = 0; i < 3; i++) logServerFailure(logger, limiter, down, answer, `r${i}`);
  now += 60_000;
  logServerFailure(logger, limiter, down, answer, 'r3');
  const metadata = new MetadataUnavailableError('redis gone');
  logServerFailure(logger, limiter, metadata, toErrorAnswer(metadata, 'blob'), 'r4');
  logServerFailure(logger, limiter, new UpstreamError('up', 'not-found', 'x'), toErrorAnswer(new UpstreamError('up', 'not-found', 'x'), 'manifest'), 'r5');
  logServerFailure(logger, limiter, new Error('bug'), toErrorAnswer(new Error('bug'), 'manifest'), 'r6');
  t.same(
    lines.map((l) => [l['level'], l['msg'], l['cause'], l['suppressed']]),
    [
      ['warn', 'answered 503: upstream up: ECONNREFUSED connecting to http://127.0.0.1:9/v2/', 'ECONNREFUSED', undefined],
      ['warn', 'answered 503: upstream up: ECONNREFUSED connecting to http://127.0.0.1:9/v2/ (and 2 more like it in the last minute)', 'ECONNREFUSED', 2],
      ['warn', 'answered 503: the metadata store is unreachable; retry later', 'MetadataUnavailableError', undefined],
    ],
    'a 404 is no failure, and an unexpected error has its own error line',
  );
});
