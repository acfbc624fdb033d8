import t from 'tap';
import { randomBytes } from 'node:crypto';
import { peerAuthorization, peerBlobPath, peerManifestPath } from '../../src/cluster/index.js';
import { parseDigest, parseRepositoryName } from '../../src/oci/index.js';
import { blobOwnedBy, CLUSTER_SECRET, clusterCount, fakePeer, hashedGet, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { errorCode, request } from '../fixtures/http.js';
import type { TestMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// A blob HEAD that misses on one replica asks the digest's owner before the upstream: once any
// replica pulled the blob, the owner holds it, and the upstream (and its rate limit) hears nothing.

const REPO = 'team/app';

t.test('a HEAD that misses asks the owner: the upstream hears nothing once the owner holds the blob', async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 3, { upstreams: { 'docker.io': { url: reg.url } } });
  const digest = reg.putBlob(REPO, randomBytes(5000));
  const owner = ownerAmong(replicas, digest);
  const [other, third] = replicas.filter((r) => r !== owner) as [TestMirror, TestMirror];

  // Nobody holds it yet: the owner asks its upstream, once, and no bytes move.
  const cold = await request(`${other.url}/v2/${REPO}/blobs/${digest}`, { method: 'HEAD' });
  t.equal(cold.status, 200);
  t.equal(cold.headers['content-length'], '5000');
  t.equal(reg.count({ kind: 'blob', method: 'HEAD' }), 1, "one upstream HEAD, the owner's");
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 0, 'a HEAD never downloads');

  t.equal((await hashedGet(`${owner.url}/v2/${REPO}/blobs/${digest}`)).digest, digest);
  await owner.app.settled();
  reg.resetRequests();
  const warm = await request(`${third.url}/v2/${REPO}/blobs/${digest}`, { method: 'HEAD' });
  t.equal(warm.status, 200);
  t.equal(warm.headers['content-length'], '5000');
  t.equal(warm.headers['docker-content-digest'], digest);
  t.equal(reg.count(), 0, 'the owner held it: the upstream was not asked');

  // A digest nobody has: the owner's 404 says no reason, so this replica's upstream decides.
  const unknown = `sha256:${'0'.repeat(64)}`;
  const nowhere = ownerAmong(replicas, unknown);
  const asker = replicas.find((r) => r !== nowhere)!;
  const missing = await request(`${asker.url}/v2/${REPO}/blobs/${unknown}`, { method: 'HEAD' });
  t.equal(missing.status, 404);
  t.equal(reg.count({ kind: 'blob', method: 'HEAD' }), 2, "the owner's upstream and this one's");
  t.equal(await clusterCount(asker, 'fallbacks', 'refused'), 0, 'a 404 is an answer, not a fallback');
});

t.test('an owner that cannot answer: the upstream says the size', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { 'docker.io': { url: reg.url } } })) as [TestMirror];
  const peer = await fakePeer(t, a, (_req, res) => res.writeHead(503).end());
  const digest = blobOwnedBy(peer, a, () => reg.putBlob(REPO, randomBytes(700)));
  const res = await request(`${a.url}/v2/${REPO}/blobs/${digest}`, { method: 'HEAD' });
  t.equal(res.status, 200);
  t.equal(res.headers['content-length'], '700');
  t.equal(reg.count({ kind: 'blob', method: 'HEAD' }), 1);
  t.equal(await clusterCount(a, 'fallbacks', 'refused'), 1);
  t.ok(a.app.cluster!.membership.members().includes(peer), 'an error answer is about the blob, not the peer');
});

t.test('the internal endpoint answers a signed HEAD of a blob, and no HEAD of a manifest', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { 'docker.io': { url: reg.url } } })) as [TestMirror];
  const digest = parseDigest(reg.putBlob(REPO, randomBytes(300)));
  const name = parseRepositoryName(REPO);
  const signed = (path: string) => ({ 'x-regmirror-forwarded': 'test', authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now()) });
  const blobPath = peerBlobPath('docker.io', name, digest);
  const head = await request(`${a.url}${blobPath}`, { method: 'HEAD', headers: signed(blobPath) });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], '300');
  t.equal(head.body.length, 0);
  const unsigned = await request(`${a.url}${blobPath}`, { method: 'HEAD' });
  t.equal(unsigned.status, 401, 'unsigned: refused');
  const manifestPath = peerManifestPath('docker.io', name, digest);
  const manifest = await request(`${a.url}${manifestPath}`, { method: 'HEAD', headers: signed(manifestPath) });
  t.equal(manifest.status, 405);
  const post = await request(`${a.url}${blobPath}`, { method: 'POST', headers: signed(blobPath) });
  t.equal(post.status, 405);
  t.equal(errorCode(post), 'UNSUPPORTED');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 0);
});
