import t from 'tap';
import { challengeFor, scopeOf, tokenRealm, type Access } from '../../src/access/index.js';
import { parseRepositoryName, resolveTarget, type RouteContext } from '../../src/oci/index.js';

const pull = (upstream: string, repository: string): Access => ({ upstream, repository: parseRepositoryName(repository), action: 'pull' });

t.test('the realm: auth.realm when set, else the Host the client used and the connection scheme', async (t) => {
  t.equal(tokenRealm({ headers: { host: 'mirror.internal:5000' } }), 'http://mirror.internal:5000/v2/token');
  t.equal(tokenRealm({ headers: { host: 'mirror.internal' }, secure: true }), 'https://mirror.internal/v2/token');
  t.equal(tokenRealm({ headers: { host: '[::1]:5000' } }), 'http://[::1]:5000/v2/token');
  t.equal(tokenRealm({ headers: { host: 'ignored' }, secure: false }, 'https://registry.example/v2/token'), 'https://registry.example/v2/token');
  // A Host that could smuggle a quote, a comma or another parameter into the header is not echoed.
  for (const host of ['evil"x', 'a,b', 'a b', 'a\r\nset-cookie: x', '', 'a/b', 'a:port']) {
    t.equal(tokenRealm({ headers: { host } }), 'http://localhost/v2/token', JSON.stringify(host));
  }
  t.equal(tokenRealm({ headers: {} }), 'http://localhost/v2/token');
});

t.test('the challenge names realm, service and the resolved scope, plus an RFC 6750 error when asked', async (t) => {
  const req = { headers: { host: 'm.test:5000' } };
  t.equal(challengeFor(req, []), 'Bearer realm="http://m.test:5000/v2/token",service="regmirror"', '/v2/ names no scope');
  t.equal(
    challengeFor(req, [pull('docker.io', 'library/alpine')].map(scopeOf)),
    'Bearer realm="http://m.test:5000/v2/token",service="regmirror",scope="repository:docker.io/library/alpine:pull"',
  );
  t.equal(
    challengeFor(req, [pull('docker.io', 'library/alpine'), pull('127.0.0.1:5001', 'team/app')].map(scopeOf), { realm: 'https://r.example/v2/token', error: 'insufficient_scope' }),
    'Bearer realm="https://r.example/v2/token",service="regmirror",scope="repository:docker.io/library/alpine:pull repository:127.0.0.1:5001/team/app:pull",error="insufficient_scope"',
  );
  t.match(challengeFor(req, [], { error: 'invalid_token' }), /,error="invalid_token"$/);
});

t.test("a scope's name resolves back to its repository, whatever the default upstream or ?ns= was", async (t) => {
  const routes: RouteContext = {
    upstreams: new Map([
      ['docker.io', { officialLibrary: true }],
      ['ghcr.io', { officialLibrary: false }],
      ['127.0.0.1:5001', { officialLibrary: false }],
    ]),
    aliases: new Map([['index.docker.io', 'docker.io']]),
    defaultUpstream: 'ghcr.io',
  };
  for (const [clientName, ns] of [
    ['alpine', 'docker.io'],
    ['library/alpine', 'index.docker.io'],
    ['team/app', undefined],
    ['team/app', '127.0.0.1:5001'],
    ['docker.io/team/app', undefined],
  ] as const) {
    const target = resolveTarget(routes, clientName, ns);
    const scope = scopeOf({ upstream: target.upstream, repository: target.name, action: 'pull' });
    const name = scope.slice('repository:'.length, -':pull'.length);
    const back = resolveTarget(routes, name, undefined);
    t.same([back.upstream, back.name], [target.upstream, target.name], `${clientName} ?ns=${ns ?? ''} → ${scope}`);
  }
});
