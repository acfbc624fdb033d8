import t from 'tap';
import { randomBytes } from 'node:crypto';
import { clusterCount, hashedGet, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// The bar, at its size: 48 concurrent cold GETs of one 256 MiB blob spread over three replicas.
const SIZE = 256 * 1024 * 1024;
const CLIENTS = 48;
// 12 GiB through three replicas and 48 hashing clients: about 4.5 minutes on a loaded 2-core machine.
t.setTimeout(900_000);

t.test(`${CLIENTS} concurrent cold GETs of one ${SIZE / 2 ** 20} MiB blob over three replicas: one upstream GET, ${CLIENTS} correct bodies`, async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob('team/app', randomBytes(SIZE));
  const replicas = await startReplicas(t, 3, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: '2GiB', timeouts: { bodyIdle: '120s' } });
  const answers = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => hashedGet(`${replicas[i % 3]!.url}/v2/team/app/blobs/${digest}`)));
  const wrong = answers.filter((a) => a.status !== 200 || a.digest !== digest || a.bytes !== SIZE || !a.complete);
  t.equal(wrong.length, 0, `${CLIENTS} whole, correct bodies`);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'exactly one upstream GET');
  const owner = ownerAmong(replicas, digest);
  for (const r of replicas.filter((x) => x !== owner)) t.equal(await clusterCount(r, 'blobBytesTotal', 'peer'), SIZE, `${r.url} got it from the owner`);
  t.equal(await clusterCount(owner, 'blobBytesTotal', 'upstream'), SIZE, 'the owner got it from the upstream');
});
