import t from 'tap';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { regmirror as cli } from '../fixtures/regmirror-process.js';
import { makePki } from '../fixtures/tls.js';

// `regmirror serve` with a `tls` section that cannot start: one line on stderr that names what is wrong.

t.test('TLS files that cannot serve: a config error naming the key, exit 2', async (t) => {
  const pki = await makePki(t);
  const pair = await pki.server('mirror');
  const dir = t.testdir({});
  const config = path.join(dir, 'c.json');
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' }, tls: { cert: pair.cert, key: 'missing.key' } }));
  const run = await cli(['serve', '--config', config, '--listen', '127.0.0.1:0']);
  t.equal(run.code, 2);
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.match(run.stderr, /^regmirror: config error: tls\.key: cannot read .*missing\.key: ENOENT/);
});

t.test('tls.listen on a port in use: the line names that port', async (t) => {
  const pki = await makePki(t);
  const pair = await pki.server('mirror');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  const dir = t.testdir({});
  const config = path.join(dir, 'c.json');
  writeFileSync(
    config,
    JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' }, tls: { cert: pair.cert, key: pair.key, listen: `127.0.0.1:${port}` } }),
  );
  const run = await cli(['serve', '--config', config, '--listen', '127.0.0.1:0']);
  t.equal(run.code, 1);
  t.equal(run.stderr.trim(), `regmirror: cannot start: 127.0.0.1:${port} is already in use`);
});
