import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { peerAuthorization, peerBlobPath } from '../../src/cluster/index.js';
import { upstreamBlobSource } from '../../src/mirror/index.js';
import { parseDigest, parseRepositoryName } from '../../src/oci/index.js';
import type { Upstream } from '../../src/upstream/index.js';
import { blobOwnedBy, CLUSTER_SECRET, clusterCount, fakePeer, hashedGet, startReplicas } from '../fixtures/cluster.js';
import { errorCode, request } from '../fixtures/http.js';
import type { TestMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const REPO = 'team/app';

t.test('a peer that answers an error: the upstream serves, and the peer stays a member', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { 'docker.io': { url: reg.url } } })) as [TestMirror];
  const peer = await fakePeer(t, a, (_req, res) => res.writeHead(503).end('busy'));
  const digest = blobOwnedBy(peer, a, () => reg.putBlob(REPO, randomBytes(2048)));
  t.equal((await hashedGet(`${a.url}/v2/${REPO}/blobs/${digest}`)).digest, digest);
  t.equal(await clusterCount(a, 'fallbacks', 'refused'), 1);
  t.equal(await clusterCount(a, 'peerFetches', 'miss'), 1);
  t.ok(a.app.cluster!.membership.members().includes(peer), 'an error answer is about the blob, not the peer');
});

t.test('signed requests that are malformed get OCI errors, after the signature', async (t) => {
  const reg = await startTestRegistry(t);
  const [a] = (await startReplicas(t, 1, { upstreams: { 'docker.io': { url: reg.url } } })) as [TestMirror];
  const digest = parseDigest(reg.putBlob(REPO, randomBytes(100)));
  const signed = (path: string, extra: Record<string, string> = { 'x-regmirror-forwarded': 'test' }) => ({ ...extra, authorization: peerAuthorization(CLUSTER_SECRET, path, Date.now()) });
  const cases: [string, string, Record<string, string> | undefined, string, number, string][] = [
    ['a bad digest', `/_regmirror/cluster/blobs/docker.io/${REPO}/sha256:nothex`, undefined, 'GET', 400, 'DIGEST_INVALID'],
    ['no repository', `/_regmirror/cluster/blobs/docker.io/${digest}`, undefined, 'GET', 400, 'NAME_INVALID'],
    ['a bad upstream encoding', `/_regmirror/cluster/blobs/%E0%A4%A/${REPO}/${digest}`, undefined, 'GET', 400, 'NAME_INVALID'],
    ['an unknown upstream', peerBlobPath('ghcr.io', parseRepositoryName(REPO), digest), undefined, 'GET', 404, 'NAME_UNKNOWN'],
    ['no forwarded header', peerBlobPath('docker.io', parseRepositoryName(REPO), digest), {}, 'GET', 400, 'UNSUPPORTED'],
    ['a DELETE', peerBlobPath('docker.io', parseRepositoryName(REPO), digest), undefined, 'DELETE', 405, 'UNSUPPORTED'],
  ];
  for (const [what, path, extra, method, status, code] of cases) {
    const res = await request(`${a.url}${path}`, { method, headers: signed(path, extra) });
    t.equal(res.status, status, what);
    t.equal(errorCode(res), code, what);
  }
  t.equal(reg.count({ kind: 'blob' }), 0);
});

t.test('resuming from an upstream that ignores the Range: the bytes already had are skipped', async (t) => {
  const bytes = randomBytes(300_000);
  const upstream = {
    getBlob: async () => ({ status: 200 as const, contentLength: bytes.length, body: Readable.from([bytes.subarray(0, 70_000), bytes.subarray(70_000)]) }),
  } as unknown as Upstream;
  const source = upstreamBlobSource({ get: () => upstream });
  const ref = { upstream: 'docker.io', name: parseRepositoryName(REPO) };
  const digest = parseDigest(`sha256:${'0'.repeat(64)}`);
  for (const offset of [0, 1000, 70_000, 100_000]) {
    const opened = await source.open(ref, digest, offset);
    const chunks: Buffer[] = [];
    for await (const c of opened.body) chunks.push(c as Buffer);
    t.same(Buffer.concat(chunks), bytes.subarray(offset), `from ${offset}`);
    t.equal(opened.size, bytes.length, 'the size is the whole blob\'s');
  }
  const ranged = { getBlob: async () => ({ status: 206 as const, contentLength: 5, body: Readable.from([Buffer.from('hello')]) }) } as unknown as Upstream;
  t.equal((await upstreamBlobSource({ get: () => ranged }).open(ref, digest, 10)).size, 15, 'a 206 counts the bytes before it');
});
