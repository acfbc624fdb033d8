import t from 'tap';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../fixtures/http.js';
import { buildImage, buildLayer, randomLayer, sha256, type Image } from '../fixtures/images.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { until } from '../fixtures/poll.js';
import { regmirror, startRegmirror } from '../fixtures/regmirror-process.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startTransferWorld, UP } from '../fixtures/transfer.js';
import { storageLayout } from '../../src/storage/layout.js';

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' };
const BIG = 96 * 1024 * 1024;

/** All or nothing: a tag that answers has every blob served; otherwise it answers 404. */
async function servedWhole(mirror: TestMirror, repo: string, image: Image): Promise<boolean> {
  const m = await request(`${mirror.url}/v2/${repo}/manifests/1`, { headers: ACCEPT });
  if (m.status === 404) return false;
  if (m.status !== 200 || sha256(m.body) !== image.manifestDigest) throw new Error(`${repo}:1 answered ${m.status}`);
  for (const blob of [image.config, ...image.layers]) {
    const b = await request(`${mirror.url}/v2/${repo}/blobs/${blob.digest}`);
    if (b.status !== 200 || sha256(b.body) !== blob.digest) throw new Error(`${repo}:1 is served, but its blob ${blob.digest} answered ${b.status}`);
  }
  return true;
}

function largestTempFile(storage: string): number {
  const dir = storageLayout(storage).tmpDir;
  try {
    return Math.max(0, ...readdirSync(dir).map((n) => statSync(path.join(dir, n)).size));
  } catch {
    return 0;
  }
}

t.test('kill -9 in the middle of an import: nothing half-imported is served, and the re-run completes', async (t) => {
  t.setTimeout(240_000);
  const world = await startTransferWorld(t);
  const small = buildImage({ layers: [buildLayer({ 'etc/small.txt': 'small\n' })] });
  const big = buildImage({ layers: [buildLayer({ 'etc/big.txt': 'big\n' }), randomLayer(BIG, 'kill-import')] });
  world.reg.pushImage('team/small', '1', small);
  world.reg.pushImage('team/big', '1', big);
  const tarFile = path.join(world.dir, 'set.tar');
  t.same((await world.exportTo(tarFile, [`${UP}/team/small:1`, `${UP}/team/big:1`])).errors, []);

  const empty = await startTestRegistry(t);
  const storage = path.join(world.dir, 'site');
  const config = path.join(world.dir, 'site.json');
  writeFileSync(config, JSON.stringify({ upstreams: { [UP]: { url: empty.url } }, storage: { path: storage }, manifestTTL: '24h' }));

  const importing = startRegmirror(t, ['import', '--config', config, tarFile]);
  await until('the big layer half written', () => largestTempFile(storage), (size) => size > 4 * 1024 * 1024, { timeoutMs: 120_000, intervalMs: 5, tries: 100_000 });
  importing.kill('SIGKILL');
  const ended = await importing.exit;
  t.equal(ended.signal, 'SIGKILL', 'killed mid-import');

  const open = () => startMirror(t, { upstreams: { [UP]: { url: empty.url } }, storage, manifestTTL: '24h' });
  const after = await open();
  t.ok(await servedWhole(after, 'team/small', small), 'the image committed before the kill is served whole');
  t.notOk(await servedWhole(after, 'team/big', big), 'the one being copied is not served at all');
  await after.close();

  const rerun = await regmirror(['import', '--config', config, tarFile, '--json'], { timeoutMs: 180_000 });
  t.equal(rerun.code, 0, rerun.stderr);
  t.match(JSON.parse(rerun.stdout), { written: { blobs: 1 }, skipped: { blobs: 6 } }, 'only the blob cut short is copied again');
  const done = await open();
  t.ok(await servedWhole(done, 'team/small', small));
  t.ok(await servedWhole(done, 'team/big', big), 'the re-run completed it');
  t.equal(empty.count({ kind: 'blob' }), 0, 'no blob was asked of the upstream');
});
