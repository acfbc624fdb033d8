import t, { type Test } from 'tap';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { peerAuthorization, peerBlobPath, peerManifestPath } from '../../src/cluster/index.js';
import { parseDigest, parseRepositoryName } from '../../src/oci/index.js';
import { CLUSTER_SECRET, clusterCount, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { buildIndex, quickImage, sha256, type Image } from '../fixtures/images.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { errorCode, request } from '../fixtures/http.js';
import type { TestMirror } from '../fixtures/mirror.js';
import type { StatusSnapshot } from '../../src/observability/index.js';
import { redisTools, sharedRedisUrl, uniqueNamespace } from '../fixtures/redis.js';

// Replicas fetch a manifest by digest from the replica that owns the digest: the upstream sees one
// GET per manifest for the cluster, however many replicas pull the image.

if (redisTools.skip && redisTools.required) t.fail(`cluster manifests: ${redisTools.skip}`);

const REPO = 'team/app';
const UP = 'docker.io';

/** A GET of a manifest through a replica; the body must hash to `digest`. */
async function pull(t: Test, replica: TestMirror, reference: string, mediaType: string, digest: string): Promise<void> {
  const res = await request(`${replica.url}/v2/${REPO}/manifests/${reference}`, { headers: { accept: mediaType } });
  t.equal(res.status, 200, `${reference} through ${replica.url}`);
  t.equal(sha256(res.body), digest, 'the right bytes');
  t.equal(res.headers['content-type'], mediaType, 'its media type');
}

let seeds = 0;

/** A new image, pushed by digest, whose manifest digest the given replica owns among these. */
function imageOwnedBy(reg: TestRegistry, replicas: readonly TestMirror[], owner: TestMirror): Image {
  for (;;) {
    const image = quickImage(`owned-${seeds++}`);
    if (ownerAmong(replicas, image.manifestDigest) !== owner) continue;
    reg.pushImage(REPO, undefined, image);
    return image;
  }
}

t.test('a tag pulled through three replicas on one Redis: one upstream request for the tag, one GET per manifest', { skip: redisTools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const children = [quickImage('cluster-child-a'), quickImage('cluster-child-b')];
  const index = buildIndex(children);
  reg.pushIndex(REPO, 'v1', index);
  const metadata = { url: await sharedRedisUrl(t), namespace: uniqueNamespace('cluster-manifests') };
  const replicas = await startReplicas(t, 3, { upstreams: { [UP]: { url: reg.url } }, metadata, manifestTTL: '1m' });
  // The tag answers late, so every replica asks while one holds its lease.
  reg.inject({ match: { pathIncludes: '/manifests/v1' }, type: 'delay', ms: 300, times: 1 });
  await Promise.all(replicas.flatMap((r) => [0, 1].map(() => pull(t, r, 'v1', index.mediaType, index.manifestDigest))));
  await Promise.all(replicas.flatMap((r) => children.map((c) => pull(t, r, c.manifestDigest, c.mediaType, c.manifestDigest))));

  t.equal(reg.count({ pathIncludes: '/manifests/v1' }), 1, 'one upstream request for the tag from the whole cluster');
  t.equal(reg.count({ method: 'GET', pathIncludes: '/manifests/v1' }), 0, 'a HEAD: the manifest itself came by digest');
  for (const digest of [index.manifestDigest, ...children.map((c) => c.manifestDigest)]) {
    t.equal(reg.count({ method: 'GET', pathIncludes: `/manifests/${digest}` }), 1, `one upstream GET of ${digest.slice(0, 19)} for the cluster`);
  }
  let hits = 0;
  for (const r of replicas) {
    hits += await clusterCount(r, 'manifestFetches', 'hit');
    for (const why of ['unreachable', 'refused', 'mismatch']) t.equal(await clusterCount(r, 'manifestFetches', why), 0, `${r.url}: no ${why} fallback`);
  }
  t.equal(hits, 6, 'each manifest was asked of its owner by the two other replicas');
  const forwarded = await Promise.all(replicas.map((r) => clusterCount(r, 'forwardedManifests', 'ok')));
  t.equal(forwarded.reduce((n, v) => n + v, 0), 6, 'and the owners answered them');

  const api = JSON.parse((await request(`${replicas[0]!.url}/api/status`)).body.toString()) as StatusSnapshot;
  t.same([api.cluster?.manifestPeerHits, api.cluster?.manifestFallbacks], [await clusterCount(replicas[0]!, 'manifestFetches', 'hit'), 0], '/api/status counts them');

  // Every replica now holds every manifest: warm everywhere, no upstream or peer traffic.
  reg.resetRequests();
  for (const r of replicas) for (const m of [index, ...children]) await pull(t, r, m.manifestDigest, m.mediaType, m.manifestDigest);
  t.equal(reg.count({ kind: 'manifest' }), 0, 'no upstream request');
  t.same(await Promise.all(replicas.map((r) => clusterCount(r, 'forwardedManifests', 'ok'))), forwarded, 'no peer request');
});

t.test('the owner down: the manifest comes from the upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 2, { upstreams: { [UP]: { url: reg.url } } });
  const [a, b] = replicas as [TestMirror, TestMirror];
  const image = imageOwnedBy(reg, replicas, b);
  await b.close();
  await pull(t, a, image.manifestDigest, image.mediaType, image.manifestDigest);
  t.equal(await clusterCount(a, 'manifestFetches', 'unreachable'), 1, 'counted as a fallback');
  t.equal(reg.count({ method: 'GET', pathIncludes: `/manifests/${image.manifestDigest}` }), 1, 'one upstream GET');
  t.same(a.app.cluster!.membership.members(), [a.url], 'B no longer takes part');
});

t.test('a peer answering wrong manifest bytes: nothing stored, the upstream answers', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { [UP]: { url: reg.url } } })) as [TestMirror];
  const decoy = quickImage('decoy');
  let asked = 0;
  const liar = createServer((req, res) => {
    if (req.url === '/readyz') return void res.end('ok');
    asked++;
    res.writeHead(200, { 'content-type': decoy.mediaType }).end(decoy.manifest);
  });
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => liar.close(() => resolve())));
  const liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
  a.app.cluster!.membership.setPeers([liarUrl]);
  await a.app.cluster!.membership.refresh();
  const liarReplica = { url: liarUrl } as TestMirror;
  const image = imageOwnedBy(reg, [a, liarReplica], liarReplica);

  await pull(t, a, image.manifestDigest, image.mediaType, image.manifestDigest);
  t.equal(asked, 1, 'the owner was asked');
  t.equal(await clusterCount(a, 'manifestFetches', 'mismatch'), 1, 'its answer failed the digest check');
  t.equal(reg.count({ method: 'GET', pathIncludes: `/manifests/${image.manifestDigest}` }), 1, 'the upstream answered instead');
  t.equal(await a.app.cache.stat(parseDigest(sha256(decoy.manifest))), undefined, 'the wrong bytes were stored under no digest');

  // What was stored is the upstream's verified copy: served warm, nobody asked again.
  await pull(t, a, image.manifestDigest, image.mediaType, image.manifestDigest);
  t.equal(asked, 1);
  t.equal(reg.count({ method: 'GET', pathIncludes: `/manifests/${image.manifestDigest}` }), 1);
});

t.test('a peer answering an error, or more than a manifest may be: the upstream answers, the peer stays a member', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { [UP]: { url: reg.url } } })) as [TestMirror];
  const answers = [(res: ServerResponse) => res.writeHead(503).end('busy'), (res: ServerResponse) => res.writeHead(200).end(Buffer.alloc(5 * 1024 * 1024, 1))];
  const peer = createServer((req, res) => (req.url === '/readyz' ? res.end('ok') : answers.shift()?.(res)));
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => peer.close(() => resolve())));
  const peerReplica = { url: `http://127.0.0.1:${(peer.address() as AddressInfo).port}` } as TestMirror;
  a.app.cluster!.membership.setPeers([peerReplica.url]);
  await a.app.cluster!.membership.refresh();
  for (const what of ['an error', 'an oversized body']) {
    const image = imageOwnedBy(reg, [a, peerReplica], peerReplica);
    await pull(t, a, image.manifestDigest, image.mediaType, image.manifestDigest);
    t.equal(reg.count({ method: 'GET', pathIncludes: `/manifests/${image.manifestDigest}` }), 1, `${what}: the upstream answered`);
  }
  t.equal(await clusterCount(a, 'manifestFetches', 'refused'), 2, 'both counted as refused');
  t.ok(a.app.cluster!.membership.members().includes(peerReplica.url), 'an answer is about the manifest, not the peer');
});

t.test('the internal manifest endpoint: only signed requests, never forwarded again', async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 2, { upstreams: { [UP]: { url: reg.url } } });
  const [a, b] = replicas as [TestMirror, TestMirror];
  // A manifest B owns, asked of A as if a third replica had forwarded it there.
  const image = imageOwnedBy(reg, replicas, b);
  const digest = parseDigest(image.manifestDigest);
  const path = peerManifestPath(UP, parseRepositoryName(REPO), digest);
  const forwarded = { 'x-regmirror-forwarded': 'http://127.0.0.1:1' };
  const cases: [string, Record<string, string>][] = [
    ['no credentials', forwarded],
    ['the secret itself as a bearer token', { ...forwarded, authorization: `Bearer ${CLUSTER_SECRET}` }],
    ['signed with another secret', { ...forwarded, authorization: peerAuthorization('another-secret-0123456789', path, Date.now()) }],
    ['signed for the blob path of the same digest', { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, peerBlobPath(UP, parseRepositoryName(REPO), digest), Date.now()) }],
  ];
  for (const [what, headers] of cases) {
    const res = await request(`${a.url}${path}`, { headers });
    t.equal(res.status, 401, `${what}: 401`);
    t.equal(errorCode(res), 'UNAUTHORIZED', `${what}: an OCI error body`);
    t.notMatch(res.body.toString(), CLUSTER_SECRET);
  }
  t.equal(reg.count(), 0, 'nothing reached the upstream');

  const ok = await request(`${a.url}${path}`, { headers: { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now()) } });
  t.equal(ok.status, 200, 'a signed request is served');
  t.equal(sha256(ok.body), image.manifestDigest, 'with the manifest bytes');
  t.equal(ok.headers['content-type'], image.mediaType, 'and its media type');
  t.equal(reg.count({ method: 'GET', pathIncludes: `/manifests/${digest}` }), 1, 'A fetched it from upstream itself');
  t.equal(await clusterCount(b, 'forwardedManifests', 'ok'), 0, 'B, the owner, was not asked');
  t.equal(await clusterCount(a, 'manifestFetches', 'hit'), 0, 'A asked no peer');
  t.equal(await clusterCount(a, 'forwardedManifests', 'ok'), 1, 'counted as served to a peer');

  const malformed = `/_regmirror/cluster/manifests/${UP}/${digest}`;
  const bad = await request(`${a.url}${malformed}`, { headers: { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, malformed, Date.now()) } });
  t.same([bad.status, errorCode(bad)], [400, 'NAME_INVALID'], 'a signed but malformed path: an OCI error');

  const unknown = peerManifestPath(UP, parseRepositoryName(REPO), parseDigest(sha256('not a manifest upstream holds')));
  const missing = await request(`${a.url}${unknown}`, { headers: { ...forwarded, authorization: peerAuthorization(CLUSTER_SECRET, unknown, Date.now()) } });
  t.same([missing.status, errorCode(missing)], [404, 'MANIFEST_UNKNOWN'], "the upstream's 404, passed on");
  t.equal(await clusterCount(a, 'forwardedManifests', 'error'), 1, 'counted as an error');

  // The public route to the same manifest still goes through B, the owner.
  reg.resetRequests();
  const other = imageOwnedBy(reg, replicas, b);
  await pull(t, a, other.manifestDigest, other.mediaType, other.manifestDigest);
  t.equal(await clusterCount(b, 'forwardedManifests', 'ok'), 1, 'A asked B for one it owns');
  t.equal(await clusterCount(a, 'manifestFetches', 'hit'), 1);
});
