import t from 'tap';
import { randomBytes } from 'node:crypto';
import { clusterCount, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { httpsGet, makePki } from '../fixtures/tls.js';
import { sha256 } from '../fixtures/images.js';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const REPO = 'team/app';

t.test('replicas serving https trust each other through cluster.ca', async (t) => {
  const pki = await makePki(t, 'replicas CA');
  const server = await pki.server('replica');
  const reg = await startTestRegistry(t);
  const blob = randomBytes(512 * 1024);
  const digest = reg.putBlob(REPO, blob);
  for (const ca of [pki.caCert, undefined]) {
    const sections = ca === undefined ? {} : { cluster: { ca } };
    const replicas = await startReplicas(t, 2, { upstreams: { 'docker.io': { url: reg.url } }, tls: server, sections });
    t.ok(replicas.every((r) => r.url.startsWith('https://')), 'each replica is https, and so is its derived self');
    const live = replicas[0]!.app.cluster!.membership.states().filter((m) => m.live).length;
    const owner = ownerAmong(replicas, digest);
    const other = replicas.find((r) => r !== owner)!;
    reg.resetRequests();
    const got = await httpsGet(`${other.url}/v2/${REPO}/blobs/${digest}`, { ca: pki.caCert });
    t.equal(got.status, 200);
    t.equal(sha256(got.body), digest, 'the whole blob either way');
    if (ca !== undefined) {
      t.equal(live, 2, 'the peer answers its probe over https');
      t.equal(await clusterCount(other, 'peerFetches', 'hit'), 1, 'fetched from the owner over https');
      t.equal(await clusterCount(other, 'blobBytesTotal', 'upstream'), 0, 'not from the upstream');
    } else {
      // The control: without the CA the peer's certificate is refused, so it never counts as live.
      t.equal(live, 1, 'without cluster.ca the peer is not trusted');
      t.equal(await clusterCount(other, 'peerFetches', 'hit'), 0);
      t.equal(await clusterCount(other, 'blobBytesTotal', 'upstream'), blob.length, 'from the upstream instead');
    }
  }
});

t.test('cluster.ca must hold certificates', async (t) => {
  const dir = t.testdir({ 'empty.pem': 'not a certificate\n' });
  const cluster = { peers: [], self: 'http://a:1', secret: 'a-cluster-secret-of-some-length', ca: 'empty.pem' };
  const err = t.throws(() => parseConfig({ upstreams: { 'docker.io': { url: 'https://x' } }, cluster }, { baseDir: dir, env: {} })) as unknown;
  t.type(err, ConfigError);
  t.match(err, { key: 'cluster.ca', message: `holds no PEM certificate` });
});
