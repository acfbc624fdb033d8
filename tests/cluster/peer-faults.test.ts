import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ownerOf } from '../../src/cluster/index.js';
import { blobOwnedBy, clusterCount, fakePeer, hashedGet, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { pauseNextBlobGet } from '../fixtures/cache.js';
import { until } from '../fixtures/poll.js';
import type { TestMirror } from '../fixtures/mirror.js';

const REPO = 'team/app';
const SIZE = 4 * 1024 * 1024;

t.test('the owner gone mid-download: the others finish every body from the upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const upstreams = { 'docker.io': { url: reg.url } };
  const replicas = await startReplicas(t, 3, { upstreams });
  const digest = reg.putBlob(REPO, randomBytes(SIZE));
  const owner = ownerAmong(replicas, digest);
  const others = replicas.filter((r) => r !== owner);
  // The owner's upstream download stops after 1 MiB: its peers have part of the blob when it goes.
  const release = pauseNextBlobGet(reg, 1024 * 1024);
  const answers = Promise.all(others.flatMap((r) => [0, 1].map(() => hashedGet(`${r.url}/v2/${REPO}/blobs/${digest}`))));
  for (const r of others) await until(`${r.url} has bytes from the owner`, () => clusterCount(r, 'blobBytesTotal', 'peer'), (n) => n > 0, { timeoutMs: 20_000 });
  // Abruptly: no grace, every connection destroyed mid-body.
  await owner.app.close(0);
  release();
  const got = await answers;
  t.same(got.map((a) => [a.status, a.digest, a.bytes, a.complete]), got.map(() => [200, digest, SIZE, true]), 'every client got the whole, right blob');
  for (const r of others) {
    t.equal(await clusterCount(r, 'fallbacks', 'broke'), 1, `${r.url} resumed from the upstream once`);
    t.ok((await clusterCount(r, 'blobBytesTotal', 'upstream')) > 0, 'with bytes from the upstream');
  }
  const resumed = reg.filter({ kind: 'blob', method: 'GET' }).filter((r) => typeof r.headers.range === 'string');
  t.equal(resumed.length, 2, 'each surviving replica asked the upstream for the rest only');
  t.ok(resumed.every((r) => /^bytes=[1-9]\d*-$/.test(r.headers.range as string)), 'from the byte it had');
  await Promise.all(others.map((r) => r.app.settled()));
  reg.resetRequests();
  for (const r of others) t.equal((await hashedGet(`${r.url}/v2/${REPO}/blobs/${digest}`)).digest, digest, 'cached, verified');
  t.equal(reg.count({ kind: 'blob' }), 0);
});

t.test('an owner that does not answer: the upstream serves, and the owner is out until it is ready again', async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 2, { upstreams: { 'docker.io': { url: reg.url } } });
  const [a, b] = replicas as [TestMirror, TestMirror];
  let digest: string;
  do digest = reg.putBlob(REPO, randomBytes(8192));
  while (ownerAmong(replicas, digest) !== b);
  await b.close();
  const got = await hashedGet(`${a.url}/v2/${REPO}/blobs/${digest}`);
  t.equal(got.digest, digest);
  t.equal(await clusterCount(a, 'peerFetches', 'miss'), 1);
  t.equal(await clusterCount(a, 'fallbacks', 'unreachable'), 1);
  t.same(a.app.cluster!.membership.members(), [a.url], 'B no longer takes part');
});

t.test('a peer answering wrong bytes is caught by the digest check and never cached', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { 'docker.io': { url: reg.url } } })) as [TestMirror];
  // A replica that is ready, and answers every blob with bytes of the right length but not the right content.
  let asked = 0;
  const liarUrl = await fakePeer(t, a, (req, res) => {
    asked++;
    const size = Number(/len-(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    res.writeHead(200, { 'content-length': SIZE }).end(Buffer.alloc(size || SIZE, 7));
  });
  const digest = blobOwnedBy(liarUrl, a, () => reg.putBlob(REPO, randomBytes(SIZE)));

  const first = await hashedGet(`${a.url}/v2/${REPO}/blobs/${digest}`);
  t.not(first.digest === digest && first.complete, true, 'the client never gets a complete, wrong-or-right body from the liar');
  await a.app.settled();
  t.equal(asked, 1);
  t.equal(await a.app.cache.stat(digest as never), undefined, 'nothing cached');
  t.equal(await clusterCount(a, 'fallbacks', 'mismatch'), 1);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 0, 'the upstream was not asked yet');

  const second = await hashedGet(`${a.url}/v2/${REPO}/blobs/${digest}`);
  t.same([second.status, second.digest, second.complete], [200, digest, true], 'the retry gets the right bytes, from the upstream');
  t.equal(asked, 1, 'the liar is not asked again for that digest');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1);
  await a.app.settled();
  t.equal((await a.app.cache.stat(digest as never))?.size, SIZE, 'the verified bytes are cached');
});

t.test('two replicas that disagree on the owner do not wait on each other', async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 2, { upstreams: { 'docker.io': { url: reg.url } } });
  const [a, b] = replicas as [TestMirror, TestMirror];
  // B calls itself by another name, so the lists differ: A ranks [A, B], B ranks [A, B'].
  const bAlias = b.url.replace('127.0.0.1', 'localhost');
  b.app.cluster!.membership.setSelf(bAlias);
  let digest: string;
  do digest = reg.putBlob(REPO, randomBytes(64 * 1024));
  while (ownerOf(digest, [a.url, b.url]) !== b.url || ownerOf(digest, [a.url, bAlias]) !== a.url);
  // Each asks the other, which has a download of its own waiting on the first: one hop only breaks the circle.
  const got = await Promise.all([hashedGet(`${a.url}/v2/${REPO}/blobs/${digest}`), hashedGet(`${b.url}/v2/${REPO}/blobs/${digest}`)]);
  t.same(got.map((g) => g.digest), [digest, digest]);
  t.equal(await clusterCount(a, 'fallbacks', 'unreachable') + (await clusterCount(b, 'fallbacks', 'unreachable')), 0, 'no peer timed out');
  t.ok(reg.count({ kind: 'blob', method: 'GET' }) <= 2, 'at most one upstream GET per replica');
});
