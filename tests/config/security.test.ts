import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const upstreams = { 'docker.io': { url: 'https://hub.example' }, 'ghcr.io': { url: 'https://ghcr.example', username: 'u', password: 'p', private: true } };
const parse = (extra: Record<string, unknown>, ups: Record<string, unknown> = upstreams) => parseConfig({ upstreams: ups, defaultUpstream: 'docker.io', ...extra }, { baseDir: '/etc/regmirror', env: {} });

t.test('without the trust-boundary sections nothing changes', async (t) => {
  const c = parseConfig({ upstreams: { 'docker.io': { url: 'https://hub.example' } } }, { baseDir: '/x', env: {} });
  t.equal(c.tls, undefined);
  t.equal(c.auth, undefined);
  t.equal(c.audit, undefined);
  t.same(c.access, { anonymous: [], rules: [], admin: { users: [], groups: [] }, metrics: 'anonymous', trustedProxies: [] });
  t.equal(c.upstreams.get('docker.io')?.private, false);
});

t.test('a full trust boundary, paths resolved against the config directory', async (t) => {
  const c = parse({
    tls: { cert: 'tls/tls.crt', key: '/secrets/tls.key', clientCA: 'ca.pem', listen: '0.0.0.0:5443' },
    auth: { htpasswd: 'htpasswd', groups: { ops: ['alice'] }, realm: 'https://mirror.example/v2/token', signingKey: 'key.pem', tokenTTL: '10m' },
    access: {
      anonymous: ['docker.io/**'],
      rules: [{ repositories: ['ghcr.io/team/*'], groups: ['ops'], tokens: ['ci'], actions: ['read'] }],
      admin: { users: ['alice'] },
      metrics: 'admin',
      trustedProxies: ['10.0.0.0/8', '::1', '192.0.2.7'],
    },
    audit: { path: 'audit/audit.log', maxSize: '10MiB', maxFiles: 3 },
  });
  t.same(c.tls, { cert: '/etc/regmirror/tls/tls.crt', key: '/secrets/tls.key', clientCA: '/etc/regmirror/ca.pem', listen: { host: '0.0.0.0', port: 5443 } });
  t.equal(c.auth?.htpasswd, '/etc/regmirror/htpasswd');
  t.same([...(c.auth?.groups ?? [])], [['ops', ['alice']]]);
  t.equal(c.auth?.tokenTTLms, 600_000);
  t.equal(c.auth?.signingKey, '/etc/regmirror/key.pem');
  t.same(c.access.anonymous, [{ upstream: 'docker.io', repository: '**' }]);
  t.same(c.access.rules[0], { repositories: [{ upstream: 'ghcr.io', repository: 'team/*' }], users: [], groups: ['ops'], tokens: ['ci'], actions: ['read'] });
  t.same(c.access.admin, { users: ['alice'], groups: [] });
  t.equal(c.access.metrics, 'admin');
  t.same(c.audit, { path: '/etc/regmirror/audit/audit.log', maxSize: 10 * 2 ** 20, maxFiles: 3 });
  t.equal(c.upstreams.get('ghcr.io')?.private, true);
  t.equal(parse({ auth: {}, audit: { path: 'stdout' } }).audit?.path, 'stdout');
  t.equal(parse({ auth: {} }).auth?.tokenTTLms, 300_000, 'tokens live 5 minutes by default');
});

const bad: [string, Record<string, unknown>, string, Record<string, unknown>?][] = [
  ['private without auth', {}, 'upstreams.ghcr.io.private'],
  ['private not a boolean', { auth: {} }, 'upstreams.x.io.private', { 'x.io': { url: 'https://x', private: 'yes' } }],
  ['tls without key', { auth: {}, tls: { cert: 'c' } }, 'tls.key'],
  ['tls unknown key', { auth: {}, tls: { cert: 'c', key: 'k', ciphers: 'x' } }, 'tls.ciphers'],
  ['tls bad listen', { auth: {}, tls: { cert: 'c', key: 'k', listen: 'nope' } }, 'tls.listen'],
  ['realm not a URL', { auth: { realm: 'mirror/v2/token' } }, 'auth.realm'],
  ['groups not lists', { auth: { groups: { ops: 'alice' } } }, 'auth.groups.ops'],
  ['token TTL too short', { auth: { tokenTTL: '5s' } }, 'auth.tokenTTL'],
  ['policy without auth', { access: { anonymous: ['docker.io/**'] } }, 'access.anonymous', { 'docker.io': { url: 'https://x' } }],
  ['pattern on an unknown upstream', { auth: {}, access: { anonymous: ['quay.io/**'] } }, 'access.anonymous[0]'],
  ['bad glob', { auth: {}, access: { anonymous: ['docker.io/a**b'] } }, 'access.anonymous[0]'],
  ['rule without identities', { auth: {}, access: { rules: [{ repositories: ['docker.io/**'] }] } }, 'access.rules[0]'],
  ['rule with a write action', { auth: {}, access: { rules: [{ repositories: ['docker.io/**'], users: ['a'], actions: ['read', 'write'] }] } }, 'access.rules[0].actions'],
  ['rule without repositories', { auth: {}, access: { rules: [{ users: ['a'] }] } }, 'access.rules[0].repositories'],
  ['metrics policy', { auth: {}, access: { metrics: 'everyone' } }, 'access.metrics'],
  ['bad proxy range', { auth: {}, access: { trustedProxies: ['10.0.0.0/33'] } }, 'access.trustedProxies[0]'],
  ['proxy host name', { auth: {}, access: { trustedProxies: ['proxy.local'] } }, 'access.trustedProxies[0]'],
  ['audit without path', { audit: {} }, 'audit.path', { 'docker.io': { url: 'https://x' } }],
  ['audit size', { audit: { path: 'a', maxSize: '10' } }, 'audit.maxSize', { 'docker.io': { url: 'https://x' } }],
];
for (const [name, extra, key, ups] of bad) {
  t.test(`rejects: ${name}`, async (t) => {
    const err = t.throws(() => parse(extra, ups)) as unknown;
    t.type(err, ConfigError);
    t.equal((err as ConfigError).key, key);
  });
}
