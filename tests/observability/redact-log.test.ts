import t from 'tap';
import { CENSOR, redactor } from '../../src/observability/redact-log.js';

// The censor the logger runs on every line (logger.test.ts holds what a line prints): its own rules.

const censor = redactor([['password'], ['*', 'token'], ['config', 'upstreams', '*', 'password']]);

t.test('a line with nothing on a path is returned as it is, not copied', async (t) => {
  const line = { method: 'GET', route: 'manifest', status: 200, upstream: { name: 'docker.io' }, config: { upstreams: { a: { url: 'u' } } } };
  t.equal(censor(line), line);
});

t.test('only what a path reaches is censored, in a copy; `*` is exactly one key', async (t) => {
  const line = { password: 'p', a: { token: 't', b: { token: 'deeper' } }, list: [{ token: 'in a list' }], config: { upstreams: { x: { password: 'q', url: 'u' } } } };
  const out = censor(line);
  t.same(out, { password: CENSOR, a: { token: CENSOR, b: { token: 'deeper' } }, list: [{ token: 'in a list' }], config: { upstreams: { x: { password: CENSOR, url: 'u' } } } });
  t.equal(line.password, 'p', 'the original is untouched');
  t.equal(line.config.upstreams.x.password, 'q');
  t.equal((out as typeof line).list, line.list, 'what needs no censoring is shared, not copied');
});
