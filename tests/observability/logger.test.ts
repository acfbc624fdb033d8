import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLogger } from '../../src/observability/index.js';
import { haveTool } from '../fixtures/tools.js';
import { spawnDaemon } from '../fixtures/daemons.js';
import { regmirrorShellLine } from '../fixtures/regmirror-process.js';
import { request } from '../fixtures/http.js';

t.test('JSON lines with secrets redacted wherever they sit', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  logger.info({ password: 'p1', upstream: { password: 'p2' }, headers: { authorization: 'Bearer t1', cookie: 'c1' }, token: 't2', req: { token: 't3' } }, 'hello');
  logger.debug({ config: { upstreams: { 'ghcr.io': { password: 'p3' } } } }, 'config');
  logger.trace('not at debug');
  t.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(first, { level: 'info', msg: 'hello', service: 'regmirror', password: '[redacted]', upstream: { password: '[redacted]' }, headers: { authorization: '[redacted]', cookie: '[redacted]' }, token: '[redacted]', req: { token: '[redacted]' } });
  t.match(JSON.parse(lines[1]!), { config: { upstreams: { 'ghcr.io': { password: '[redacted]' } } } });
  for (const secret of ['p1', 'p2', 'p3', 't1', 't2', 't3', 'c1']) t.notOk(lines.join('').includes(`"${secret}"`), `${secret} is not logged`);
});

t.test('what a child logger binds is censored like a line\'s own fields', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  const bound = { job: 'nightly', upstream: { name: 'ghcr.io', password: 'b1' }, token: 'b2', headers: { authorization: 'Bearer b3' } };
  logger.child(bound).child({ password: 'b4' }).info({ route: 'sync' }, 'synced');
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(line, { service: 'regmirror', job: 'nightly', upstream: { name: 'ghcr.io', password: '[redacted]' }, token: '[redacted]', headers: { authorization: '[redacted]' }, password: '[redacted]', route: 'sync', msg: 'synced' });
  for (const secret of ['b1', 'b2', 'b3', 'b4']) t.notOk(lines[0]!.includes(secret), `${secret} is not logged`);
  t.equal(bound.upstream.password, 'b1', 'the bound object is left as it was');
});

t.test('an error is printed with its type, message and fields, its secrets censored; the logged objects are left as they were', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (l: string) => void lines.push(l) });
  class UpstreamTrouble extends Error {
    readonly headers = { authorization: 'Basic s1', accept: 'x' };
    readonly token = 's2';
  }
  const err = new UpstreamTrouble('upstream answered 500');
  const details = { headers: { authorization: 'Bearer s3' }, route: 'blob' };
  logger.error({ err, details }, 'failed');
  logger.warn(err);
  const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(first, { msg: 'failed', err: { type: 'UpstreamTrouble', message: 'upstream answered 500', headers: { authorization: '[redacted]', accept: 'x' }, token: '[redacted]' }, details: { headers: { authorization: '[redacted]' }, route: 'blob' } });
  t.match((first!['err'] as { stack: string }).stack, /^Error: upstream answered 500\n\s+at /, 'with its stack');
  t.match(second, { msg: 'upstream answered 500', err: { type: 'UpstreamTrouble', token: '[redacted]' } }, 'an error logged on its own');
  for (const secret of ['s1', 's2', 's3']) t.notOk(lines.join('').includes(secret), `${secret} is not logged`);
  t.equal(err.headers.authorization, 'Basic s1', 'the error keeps its own fields');
  t.equal(details.headers.authorization, 'Bearer s3', 'so does the logged object');
});

// `script` gives the CLI a pseudo-terminal as stdout, as a person running it in a shell would.
t.test('a terminal gets human-readable lines; a pipe gets JSON', { skip: haveTool('script') ? false : 'not installed: script (apt-get install bsdutils)' }, async (t) => {
  const dir = t.testdir({});
  const config = path.join(dir, 'c.json');
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' } }));
  const serve = spawnDaemon('script', 'script', ['-qec', regmirrorShellLine(['serve', '--config', config, '--listen', '127.0.0.1:0']), '/dev/null'], { ...process.env, NO_COLOR: '1' });
  t.teardown(() => serve.stop(10_000));
  const line = (await serve.waitForLine(/regmirror listening/, 60_000)).input;
  t.ok(line !== '', 'the start-up line was printed');
  t.notMatch(line.trim(), /^\{/, 'not a JSON line');
  t.match(line, /^\d\d:\d\d:\d\d INFO  regmirror listening address=127\.0\.0\.1:\d+ /, 'time, the level as a word, the message, its fields');
  t.notMatch(line, /\x1b\[/, 'NO_COLOR: no colours');
  const address = /address=([\d.]+:\d+)/.exec(line)?.[1];
  const res = await request(`http://${address}/v2/`, { headers: { 'user-agent': 'containerd/1.6.20+unknown' } });
  t.equal(res.status, 200);
  const access = (await serve.waitForLine(/ GET base /, 30_000)).input.trim();
  t.match(access, /^\d\d:\d\d:\d\d GET base 200 \d+ms 127\.0\.0\.1 containerd\/1\.6$/, 'one line per request');
});
