import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { runDoctor } from '../../src/doctor/index.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// `regmirror doctor` with upstreams.<name>.endpoints: every endpoint checked, named by its place.

t.test('doctor checks each endpoint; a failing one before the last warns, the last one fails', async (t) => {
  const [mirror, origin] = await Promise.all([startTestRegistry(t), startTestRegistry(t)]);
  mirror.inject({ match: { kind: 'base' }, type: 'status', status: 503 });
  const dir = t.testdir({});
  const config = parseConfig({ upstreams: { 'docker.io': { endpoints: [mirror.url, origin.url] } }, storage: { path: 'cache' } }, { baseDir: dir, env: {} });
  const lines = await runDoctor(config, { isPinned: () => false, user: () => 'mirror' });
  t.same(lines.slice(0, 2), [
    { level: 'warn', what: `upstream docker.io endpoint 1: GET ${mirror.url}/v2/ answered 503` },
    { level: 'ok', what: `upstream docker.io endpoint 2: registry at ${origin.url}/v2/ (answered 200)` },
  ]);

  origin.inject({ match: { kind: 'base' }, type: 'status', status: 503 });
  const down = await runDoctor(config, { isPinned: () => false, user: () => 'mirror' });
  t.same(down[1], { level: 'FAIL', what: `upstream docker.io endpoint 2: GET ${origin.url}/v2/ answered 503` }, 'no endpoint left to serve: a failure');
});
