import t from 'tap';
import { existsSync } from 'node:fs';
import { request } from '../fixtures/http.js';
import { regmirror, startServe } from '../fixtures/regmirror-process.js';
import { storageLayout } from '../../src/storage/layout.js';
import { pinnedScenario, scenario, world } from '../fixtures/cache-cli.js';

// Every cache command as a real child process beside a running `serve` (the CLI asks it).

t.test('cache commands beside a running serve', (t) => scenario(t, 'beside serve'));
t.test('gc keeps pinned content no tag reaches, beside serve', (t) => pinnedScenario(t, 'beside serve'));

t.test('a serve killed with -9 leaves a dead socket; the next command and serve replace it', async (t) => {
  const w = world(t);
  const config = w.config((await w.reg).url);
  const serve = await startServe(t, config);
  process.kill(serve.daemon.pid, 'SIGKILL');
  await serve.daemon.stop(1000);
  t.ok(existsSync(storageLayout(w.storage).adminSocket), 'the socket file outlived its server');
  const r = await regmirror(['cache', 'ls', ...(['--config', config])]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /no cached tags/);
  const again = await startServe(t, config);
  t.equal((await request(`${again.url}/v2/`)).status, 200);
});
