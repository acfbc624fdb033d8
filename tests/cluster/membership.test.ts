import t from 'tap';
import { Membership } from '../../src/cluster/index.js';
import { startMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { CLUSTER_SECRET } from '../fixtures/cluster.js';

t.test('cluster.dns: the records are re-resolved at each round, and only ready peers take part', async (t) => {
  let records = ['10.0.0.2', '10.0.0.3'];
  const ready = new Set(['http://10.0.0.2:5000', 'http://10.0.0.3:5000', 'http://[fd00::4]:5000']);
  const logs: string[] = [];
  let now = 1000;
  const m = new Membership({
    self: 'http://10.0.0.1:5000',
    dns: { host: 'peers.svc', port: 5000 },
    resolve: async (host) => {
      t.equal(host, 'peers.svc');
      if (records.length === 0) throw Object.assign(new Error('queryA ESERVFAIL peers.svc'), { code: 'ESERVFAIL' });
      return records;
    },
    probe: async (url) => {
      if (!ready.has(url)) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    },
    intervalMs: 1000,
    now: () => now,
    log: (_fields, message) => logs.push(message),
  });
  t.same(m.members(), ['http://10.0.0.1:5000'], 'before the first round: only itself');
  await m.refresh();
  t.same(m.members(), ['http://10.0.0.1:5000', 'http://10.0.0.2:5000', 'http://10.0.0.3:5000']);

  // A pod replaced: a new address (IPv6), one gone, and one not ready yet.
  records = ['10.0.0.2', 'fd00::4', '10.0.0.1', '10.0.0.5'];
  now = 2000;
  await m.refresh();
  t.same(m.members(), ['http://10.0.0.1:5000', 'http://10.0.0.2:5000', 'http://[fd00::4]:5000'], 'its own record is itself, 10.0.0.3 left, 10.0.0.5 not ready');
  const states = m.states();
  t.same(
    states.map((s) => [s.url, s.self, s.live]),
    [
      ['http://10.0.0.1:5000', true, true],
      ['http://10.0.0.2:5000', false, true],
      ['http://10.0.0.5:5000', false, false],
      ['http://[fd00::4]:5000', false, true],
    ],
  );
  t.same(states.find((s) => s.url === 'http://10.0.0.5:5000')?.lastError, { at: 2000, cause: 'connect ECONNREFUSED' });
  t.equal(states.find((s) => s.url === 'http://10.0.0.2:5000')?.lastSeen, 2000);

  // DNS failing keeps what was known.
  records = [];
  await m.refresh();
  t.equal(m.members().length, 3, 'a DNS failure drops nobody');
  t.ok(logs.some((l) => l.startsWith('resolving cluster.dns failed')));

  // A failed peer fetch takes the peer out until a probe finds it ready again.
  m.failed('http://10.0.0.2:5000', 'ECONNRESET');
  t.notOk(m.members().includes('http://10.0.0.2:5000'));
  records = ['10.0.0.2', 'fd00::4'];
  await m.refresh();
  t.ok(m.members().includes('http://10.0.0.2:5000'));
});

t.test('a replica probes its peers on its own timer, and POD_IP with the bound port makes its own URL', async (t) => {
  const reg = await startTestRegistry(t);
  const upstreams = { 'docker.io': { url: reg.url } };
  const b = await startMirror(t, { upstreams, env: { POD_IP: '127.0.0.1' }, sections: { cluster: { peers: [], secret: CLUSTER_SECRET } } });
  const a = await startMirror(t, { upstreams, env: { POD_IP: '127.0.0.1' }, sections: { cluster: { peers: [b.url, 'http://127.0.0.1:1'], secret: CLUSTER_SECRET, probeInterval: '100ms' } } });
  t.equal(a.app.cluster!.membership.self, a.url);
  const { until } = await import('../fixtures/poll.js');
  await until('A sees B ready', () => a.app.cluster!.membership.members(), (m) => m.includes(b.url));
  t.same(a.app.cluster!.membership.members(), [a.url, b.url].sort(), 'the peer that refuses connections takes no part');
  const line = a.logs.find((l) => l.includes('regmirror listening'))!;
  t.match(line, '"secret":"[redacted]"');
  t.notMatch(a.logs.join('\n'), CLUSTER_SECRET, 'the secret is in no log line');
});

t.test('a peer whose /readyz says 503 is not ready; the default resolver asks DNS itself', async (t) => {
  const { createServer } = await import('node:http');
  const server = createServer((_req, res) => res.writeHead(503).end('{"status":"not ready"}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { PeerClient } = await import('../../src/cluster/index.js');
  const client = new PeerClient({ secret: CLUSTER_SECRET, self: () => undefined, probeTimeoutMs: 1000 });
  t.teardown(() => client.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  await t.rejects(client.ready(url), { name: 'PeerRefused', message: 'HTTP 503' });

  // Whether this machine's DNS knows the name or not, a round ends and keeps to what it learnt.
  const logs: string[] = [];
  const m = new Membership({ self: 'http://10.0.0.1:5000', dns: { host: 'localhost', port: 5000 }, probe: (u) => client.ready(u), intervalMs: 1000, log: (_f, message) => logs.push(message) });
  await m.refresh();
  t.ok(m.members().includes('http://10.0.0.1:5000'));
  t.ok(m.states().every((s) => s.self || !s.live || s.url.endsWith(':5000')));
});
