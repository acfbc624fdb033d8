import t from 'tap';
import { randomBytes } from 'node:crypto';
import { peerAuthorization, peerBlobPath } from '../../src/cluster/index.js';
import { parseDigest, parseRepositoryName } from '../../src/oci/index.js';
import { CLUSTER_SECRET, clusterCount, hashedGet, join, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';

const REPO = 'team/app';
const SIZE = 2 * 1024 * 1024;

t.test('concurrent cold GETs spread over three replicas: one upstream GET, every body right', async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob(REPO, randomBytes(SIZE));
  const replicas = await startReplicas(t, 3, { upstreams: { 'docker.io': { url: reg.url } } });
  // Slow enough that every request arrives while the one download runs.
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'throttle', bytesPerSecond: 4 * 1024 * 1024, times: 1 });
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => hashedGet(`${replicas[i % 3]!.url}/v2/${REPO}/blobs/${digest}`)));
  t.same(answers.map((a) => [a.status, a.digest, a.complete]), answers.map(() => [200, digest, true]), '12 whole, correct bodies');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'exactly one upstream GET for the cluster');
  const owner = ownerAmong(replicas, digest);
  const others = replicas.filter((r) => r !== owner);
  for (const r of others) {
    t.equal(await clusterCount(r, 'peerFetches', 'hit'), 1, `${r.url} fetched it from the owner once`);
    t.equal(await clusterCount(r, 'blobBytesTotal', 'peer'), SIZE, 'every byte from the peer');
    t.equal(await clusterCount(r, 'blobBytesTotal', 'upstream'), 0, 'none from upstream');
  }
  t.equal(await clusterCount(owner, 'forwarded', 'ok'), 2, 'the owner served each other replica once');
  t.equal(await clusterCount(owner, 'blobBytesTotal', 'upstream'), SIZE, 'the owner fetched it from upstream');
  // Each replica cached what it got: warm everywhere, no more traffic.
  await Promise.all(replicas.map((r) => r.app.settled()));
  reg.resetRequests();
  for (const r of replicas) t.equal((await hashedGet(`${r.url}/v2/${REPO}/blobs/${digest}`)).digest, digest);
  t.equal(reg.count({ kind: 'blob' }), 0, 'warm on every replica');
  t.equal(await clusterCount(owner, 'forwarded', 'ok'), 2, 'and no more peer traffic');

  const status = JSON.parse((await request(`${others[0]!.url}/api/status`)).body.toString()) as { cluster: { members: { url: string; live: boolean; self: boolean }[]; peerHits: number } };
  t.same(
    status.cluster.members.map((m) => [m.url, m.live, m.self]),
    replicas.map((r) => [r.url, true, r === others[0]]).sort(),
    '/api/status lists every member, live',
  );
  t.equal(status.cluster.peerHits, 1);
  // The canary: the shared secret is in no log line, no metric and no status answer of any replica.
  for (const r of replicas) {
    t.notMatch(r.logs.join('\n'), CLUSTER_SECRET, 'not logged');
    t.notMatch((await request(`${r.url}/metrics`)).body.toString(), CLUSTER_SECRET, 'not in /metrics');
    t.notMatch((await request(`${r.url}/api/status`)).body.toString(), CLUSTER_SECRET, 'not in /api/status');
  }
  t.ok(owner.logs.some((l) => l.includes('"route":"peer"') || l.includes('/_regmirror/cluster/blobs/')), 'the owner logged the peer requests it served');
});

t.test('the internal endpoint answers only requests signed with cluster.secret', async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob(REPO, randomBytes(1024));
  const [replica] = await startReplicas(t, 1, { upstreams: { 'docker.io': { url: reg.url } } });
  const path = peerBlobPath('docker.io', parseRepositoryName(REPO), parseDigest(digest));
  const forwarded = { 'x-regmirror-forwarded': 'http://127.0.0.1:1' };
  const cases: [string, Record<string, string>][] = [
    ['no credentials', forwarded],
    ['the secret itself as a bearer token', { ...forwarded, authorization: `Bearer ${CLUSTER_SECRET}` }],
    ['signed with another secret', { ...forwarded, authorization: peerAuthorization('another-secret-0123456789', path, Date.now()) }],
    ['signed for another path', { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, `${path}x`, Date.now()) }],
    ['an old signature', { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now() - 3_600_000) }],
  ];
  for (const [what, headers] of cases) {
    const res = await request(`${replica!.url}${path}`, { headers });
    t.equal(res.status, 401, `${what}: 401`);
    t.equal(errorCode(res), 'UNAUTHORIZED', `${what}: an OCI error body`);
    t.notMatch(res.body.toString(), CLUSTER_SECRET);
  }
  t.equal(reg.count(), 0, 'nothing reached the upstream');
  const ok = await request(`${replica!.url}${path}`, { headers: { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now()) } });
  t.equal(ok.status, 200, 'a signed request is served');
  t.equal(ok.body.length, 1024);

  // A mirror without `cluster` has no such endpoint, signed or not.
  const single = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const none = await request(`${single.url}${path}`, { headers: { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now()) } });
  t.equal(none.status, 404);
});

t.test('a forwarded request is never forwarded again', async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 2, { upstreams: { 'docker.io': { url: reg.url } } });
  const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
  // A blob B owns, asked of A as if a third replica had forwarded it there.
  let digest: string;
  do digest = reg.putBlob(REPO, randomBytes(4096));
  while (ownerAmong(replicas, digest) !== b);
  const path = peerBlobPath('docker.io', parseRepositoryName(REPO), parseDigest(digest));
  const res = await request(`${a.url}${path}`, { headers: { 'x-regmirror-forwarded': 'http://127.0.0.1:1', authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now()) } });
  t.equal(res.status, 200);
  t.equal(res.body.length, 4096);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'A fetched it from upstream itself');
  t.equal(await clusterCount(b, 'forwarded', 'ok'), 0, 'B, the owner, was not asked');
  t.equal(await clusterCount(a, 'peerFetches', 'hit') + (await clusterCount(a, 'peerFetches', 'miss')), 0, 'A asked no peer');
});

t.test('a replica added takes over only its share; a replica gone is skipped', async (t) => {
  const reg = await startTestRegistry(t);
  const upstreams = { 'docker.io': { url: reg.url } };
  const replicas = await startReplicas(t, 3, { upstreams });
  const [a, b, c] = replicas as [(typeof replicas)[0], (typeof replicas)[0], (typeof replicas)[0]];
  // First only A and B know each other: C is started but not yet a member.
  await join([a, b]);
  const blobs = Array.from({ length: 40 }, (_, i) => reg.putBlob(REPO, randomBytes(1024 + i)));
  const withTwo = new Map(blobs.map((d) => [d, ownerAmong([a, b], d)]));
  const withThree = new Map(blobs.map((d) => [d, ownerAmong(replicas, d)]));
  const moved = blobs.filter((d) => withTwo.get(d) !== withThree.get(d));
  t.ok(moved.length > 0 && moved.every((d) => withThree.get(d) === c), 'adding C moves digests only to C');

  await join(replicas);
  const toC = blobs.find((d) => withThree.get(d) === c)!;
  t.equal((await hashedGet(`${a.url}/v2/${REPO}/blobs/${toC}`)).digest, toC);
  t.equal(await clusterCount(c, 'forwarded', 'ok'), 1, 'A asked C, the new owner');

  // C goes away: A's next probe finds it gone, and C's digests fall to A and B, with no failed peer fetch.
  await c.close();
  await a.app.cluster!.membership.refresh();
  const members = a.app.cluster!.membership.states();
  t.same(members.filter((m) => !m.live).map((m) => m.url), [c.url], 'A sees C not live');
  t.ok(members.find((m) => m.url === c.url)?.lastError?.cause, 'with the cause');
  const nextToC = blobs.find((d) => d !== toC && withThree.get(d) === c)!;
  reg.resetRequests();
  t.equal((await hashedGet(`${a.url}/v2/${REPO}/blobs/${nextToC}`)).digest, nextToC);
  t.equal(await clusterCount(a, 'peerFetches', 'miss'), 0, 'no attempt on the gone replica');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'one upstream GET, by the digest\'s new owner');
});
