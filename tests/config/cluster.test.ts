import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { redactedConfig } from '../../src/app.js';

const SECRET = 'a-cluster-secret-of-some-length';
const base = { upstreams: { 'docker.io': { url: 'https://registry.example' } }, listen: '0.0.0.0:5000' };

function parse(cluster: unknown, env: NodeJS.ProcessEnv = {}) {
  return parseConfig({ ...base, cluster }, { baseDir: '/tmp', env });
}

function keyOf(cluster: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    parse(cluster, env);
  } catch (err) {
    if (err instanceof ConfigError) return `${err.key}: ${err.reason}`;
    throw err;
  }
  return 'valid';
}

t.test('cluster is optional: a single replica', async (t) => {
  t.equal(parseConfig(base, { baseDir: '/tmp', env: {} }).cluster, undefined);
});

t.test('peers, self and secret, normalised to origins', async (t) => {
  const c = parse({ peers: ['http://10.0.0.2:5000/', 'http://10.0.0.3:5000', 'http://10.0.0.2:5000'], self: 'http://10.0.0.1:5000', secret: SECRET })?.cluster;
  t.same(c, { peers: ['http://10.0.0.2:5000', 'http://10.0.0.3:5000'], dns: undefined, self: 'http://10.0.0.1:5000', podIp: undefined, secret: SECRET, probeIntervalMs: 3000, ca: undefined });
});

t.test('dns with POD_IP and secretEnv', async (t) => {
  const c = parse({ dns: 'regmirror-peers.registry.svc.cluster.local:5000', secretEnv: 'MIRROR_SECRET', probeInterval: '5s' }, { POD_IP: '10.1.2.3', MIRROR_SECRET: SECRET })?.cluster;
  t.same(c, { peers: undefined, dns: { host: 'regmirror-peers.registry.svc.cluster.local', port: 5000 }, self: undefined, podIp: '10.1.2.3', secret: SECRET, probeIntervalMs: 5000, ca: undefined });
});

t.test('every mistake names its key, and never echoes the secret', async (t) => {
  const cases: [unknown, NodeJS.ProcessEnv, string][] = [
    [{ secret: SECRET, self: 'http://a:1' }, {}, 'cluster.peers'],
    [{ peers: [], dns: 'x:1', secret: SECRET, self: 'http://a:1' }, {}, 'cluster.peers'],
    [{ peers: 'http://b:1', secret: SECRET, self: 'http://a:1' }, {}, 'cluster.peers'],
    [{ peers: ['ftp://b:1'], secret: SECRET, self: 'http://a:1' }, {}, 'cluster.peers[0]'],
    [{ peers: ['http://b:1/v2'], secret: SECRET, self: 'http://a:1' }, {}, 'cluster.peers[0]'],
    [{ peers: ['http://u:p@b:1'], secret: SECRET, self: 'http://a:1' }, {}, 'cluster.peers[0]'],
    [{ dns: 'no-port', secret: SECRET, self: 'http://a:1' }, {}, 'cluster.dns'],
    [{ dns: 'svc:70000', secret: SECRET, self: 'http://a:1' }, {}, 'cluster.dns'],
    [{ peers: [], secret: SECRET }, {}, 'cluster.self'],
    [{ peers: [], secret: SECRET, self: 'not a url' }, {}, 'cluster.self'],
    [{ peers: [], self: 'http://a:1' }, {}, 'cluster.secret'],
    [{ peers: [], self: 'http://a:1', secret: 'short' }, {}, 'cluster.secret'],
    [{ peers: [], self: 'http://a:1', secret: SECRET, secretEnv: 'X' }, { X: SECRET }, 'cluster.secret'],
    [{ peers: [], self: 'http://a:1', secretEnv: 'MISSING' }, {}, 'cluster.secretEnv'],
    [{ peers: [], self: 'http://a:1', secret: SECRET, probeInterval: '1ms' }, {}, 'cluster.probeInterval'],
    [{ peers: [], self: 'http://a:1', secret: SECRET, other: 1 }, {}, 'cluster.other'],
    [{ peers: [], self: 'http://a:1', secret: SECRET, ca: '/nonexistent/ca.pem' }, {}, 'cluster.ca'],
    [{ peers: [], self: 'http://a:1', secret: SECRET, ca: 7 }, {}, 'cluster.ca'],
    ['yes', {}, 'cluster'],
  ];
  for (const [cluster, env, key] of cases) {
    const got = keyOf(cluster, env);
    t.equal(got.split(':')[0], key, `${JSON.stringify(cluster)} → ${got}`);
    t.notMatch(got, SECRET);
  }
});

t.test('the start-up line shows the cluster without its secret', async (t) => {
  const config = parse({ peers: ['http://10.0.0.2:5000'], self: 'http://10.0.0.1:5000', secret: SECRET });
  const shown = JSON.stringify(redactedConfig(config));
  t.notMatch(shown, SECRET);
  t.match(shown, '"peers":["http://10.0.0.2:5000"]');
  t.match(shown, '"secret":"[redacted]"');
});
