import t from 'tap';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../fixtures/http.js';
import { until } from '../fixtures/poll.js';
import { regmirror as cli, startServe } from '../fixtures/regmirror-process.js';

t.test('--version and --help', async (t) => {
  const version = await cli(['--version']);
  t.equal(version.code, 0);
  t.match(version.stdout, /^regmirror \d+\.\d+\.\d+ \(commit /);
  const help = await cli(['serve', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--config <file>/);
  t.match(help.stdout, /--listen <host:port>/);
  t.match(help.stdout, /--storage <dir>/);
});

t.test('a config error is one line naming the key, exit 2', async (t) => {
  const dir = t.testdir({ 'bad.json': JSON.stringify({ upstreams: { 'docker.io': { url: 'https://x' } }, storage: { maxSize: 'lots' } }) });
  const run = await cli(['serve', '--config', path.join(dir, 'bad.json')]);
  t.equal(run.code, 2);
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.match(run.stderr, /^regmirror: config error: storage\.maxSize: /);
  const missing = await cli(['serve', '--config', path.join(dir, 'none.json')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /cannot read config file/);
  const badFlag = await cli(['serve', '--listen', 'nowhere', '--config', path.join(dir, 'bad.json')]);
  t.equal(badFlag.code, 2);
  const unknownCommand = await cli(['servee']);
  t.equal(unknownCommand.code, 2);
});

t.test('serve starts offline on a config, answers /v2/, and stops cleanly on SIGTERM', async (t) => {
  const dir = t.testdir({});
  const config = path.join(dir, 'c.json');
  // An upstream nobody listens on: the mirror must still start.
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' } }));
  const serve = await startServe(t, config);
  const res = await request(`${serve.url}/v2/`);
  t.equal(res.status, 200);
  serve.daemon.kill('SIGTERM');
  t.equal((await serve.daemon.exit).code, 0, 'exit 0 after SIGTERM');
  t.ok(serve.daemon.lines.some((l) => l.includes('shutting down')), 'it said it was shutting down');
});

t.test('serve reopens the audit file on SIGHUP (logrotate create mode)', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'audit.log');
  const serve = await startServe(t, { dir, config: { upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' }, audit: { path: 'audit.log' } } });
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').length : 0);
  await request(`${serve.url}/v2/alpine/tags/list`);
  await until('the first audit line', () => lines(file) === 1);
  renameSync(file, `${file}.1`);
  serve.daemon.kill('SIGHUP');
  // The signal and the next pull race: pull until a line lands in a new file at the path.
  let pulls = 1;
  await until('a line in the reopened file', async () => (await request(`${serve.url}/v2/alpine/tags/list`), pulls++, lines(file) > 0));
  serve.daemon.kill('SIGTERM');
  t.equal((await serve.daemon.exit).code, 0, 'SIGHUP did not stop it; SIGTERM does');
  t.equal(lines(file) + lines(`${file}.1`), pulls, 'no line lost across the reopen');
});
