import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ownerOf } from '../../src/cluster/index.js';
import { CLUSTER_SECRET, clusterCount, hashedGet, join, startReplicas } from '../fixtures/cluster.js';
import { pauseNextBlobGet } from '../fixtures/cache.js';
import { until } from '../fixtures/poll.js';
import { startRegmirror } from '../fixtures/regmirror-process.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const REPO = 'team/app';
const SIZE = 8 * 1024 * 1024;

t.test('the owner, a real serve process, killed with SIGKILL mid-download: the others finish every body from the upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const upstreams = { 'docker.io': { url: reg.url } };
  const [a, b] = await startReplicas(t, 2, { upstreams, timeouts: { bodyIdle: '30s' } });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-cluster-owner-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'mirror.config.json');
  writeFileSync(
    config,
    JSON.stringify({ storage: { path: path.join(dir, 'data') }, upstreams, cluster: { peers: [a!.url, b!.url], secretEnv: 'CLUSTER_SECRET', probeInterval: '1h' } }),
  );
  // Its own URL from POD_IP and the port it binds, as in a pod.
  const owner = startRegmirror(t, ['serve', '--config', config, '--listen', '127.0.0.1:0', '--log-level', 'info'], { ...process.env, POD_IP: '127.0.0.1', CLUSTER_SECRET });
  const listening = await owner.waitForLine(/"msg":"regmirror listening".*"address":"([\d.]+:\d+)"|"address":"([\d.]+:\d+)".*"msg":"regmirror listening"/, 60_000);
  const ownerUrl = `http://${listening[1] ?? listening[2]}`;
  for (const r of [a!, b!]) r.app.cluster!.membership.setPeers([a!.url, b!.url, ownerUrl]);
  await Promise.all([a!, b!].map((r) => r.app.cluster!.membership.refresh()));
  t.same(a!.app.cluster!.membership.members(), [a!.url, b!.url, ownerUrl].sort(), 'the child takes part');

  let digest: string;
  do digest = reg.putBlob(REPO, randomBytes(SIZE));
  while (ownerOf(digest, [a!.url, b!.url, ownerUrl]) !== ownerUrl);
  // The owner's upstream download stops after 1 MiB: the others hold part of the blob when it dies.
  const release = pauseNextBlobGet(reg, 1024 * 1024);
  const answers = Promise.all([a!, b!].flatMap((r) => [0, 1].map(() => hashedGet(`${r.url}/v2/${REPO}/blobs/${digest}`))));
  for (const r of [a!, b!]) await until(`${r.url} has bytes from the owner`, () => clusterCount(r, 'blobBytesTotal', 'peer'), (n) => n > 0, { timeoutMs: 30_000, tries: 1500 });
  owner.kill('SIGKILL');
  t.equal((await owner.exit).signal, 'SIGKILL');
  release();
  const got = await answers;
  t.same(got.map((x) => [x.status, x.digest, x.bytes, x.complete]), got.map(() => [200, digest, SIZE, true]), 'every client got the whole, right blob');
  for (const r of [a!, b!]) t.equal(await clusterCount(r, 'fallbacks', 'broke'), 1, `${r.url} resumed from the upstream`);
  const ranged = reg.filter({ kind: 'blob', method: 'GET' }).filter((r) => typeof r.headers.range === 'string');
  t.equal(ranged.length, 2, 'each survivor asked the upstream only for the rest');
  await Promise.all([a!, b!].map((r) => r.app.settled()));
  // The dead owner is out at the next probe; the digest is then owned by a survivor and served warm.
  await join([a!, b!]);
  reg.resetRequests();
  for (const r of [a!, b!]) t.equal((await hashedGet(`${r.url}/v2/${REPO}/blobs/${digest}`)).digest, digest);
  t.equal(reg.count({ kind: 'blob' }), 0, 'both cached what they verified');
});
