import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../fixtures/http.js';
import { buildImage, buildLayer, sha256, type Image } from '../fixtures/images.js';
import type { TestMirror } from '../fixtures/mirror.js';
import { REFS, startTransferWorld, UP } from '../fixtures/transfer.js';
import type { ExportSummary } from '../../src/transfer/index.js';

const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function pullsImage(t: Test, mirror: TestMirror, repo: string, ref: string, image: Image): Promise<void> {
  const m = await request(`${mirror.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  t.equal(m.status, 200, `${repo}:${ref} manifest`);
  t.equal(sha256(m.body), image.manifestDigest, `${repo}:${ref} is the upstream manifest byte for byte`);
  for (const blob of [image.config, ...image.layers]) {
    const b = await request(`${mirror.url}/v2/${repo}/blobs/${blob.digest}`);
    t.equal(b.status, 200, `${repo} blob ${blob.digest.slice(7, 19)}`);
    t.equal(sha256(b.body), blob.digest);
  }
}

t.test('export from a connected mirror, import into a disconnected one, pull the same digests', async (t) => {
  const world = await startTransferWorld(t);
  const { images, reg } = world;
  const out = path.join(world.dir, 'set');
  const result = await world.exportTo(out, REFS, { platforms: ['linux/arm64'] });
  t.same(result.errors, []);
  t.ok(existsSync(path.join(out, 'oci-layout')) && existsSync(path.join(out, 'index.json')), 'an OCI layout');
  const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  t.same(
    index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.annotations['io.containerd.image.name'], m.digest]),
    [
      [REFS[0], REFS[0], images.single.manifestDigest],
      [REFS[1], REFS[1], images.multi.manifestDigest],
      [REFS[2], REFS[2], images.a.manifestDigest],
      [REFS[3], REFS[3], images.b.manifestDigest],
    ],
    'one entry per image, named by its full reference',
  );
  const blobs = readdirSync(path.join(out, 'blobs', 'sha256'));
  t.notOk(blobs.includes(images.amd64.manifestDigest.slice(7)), 'the filtered-out platform did not travel');
  t.ok(blobs.includes(images.arm64.manifestDigest.slice(7)) && blobs.includes(images.multi.manifestDigest.slice(7)), 'the index and the selected platform did');
  const shared = images.a.layers[0]!.digest;
  t.equal(blobs.filter((b) => b === shared.slice(7)).length, 1, 'the shared layer is written once');
  t.equal(result.written.blobs, blobs.length, 'each blob counted once');
  const summary = JSON.parse(readFileSync(path.join(out, 'regmirror-export.json'), 'utf8')) as ExportSummary;
  t.match(summary.images[1], { reference: REFS[1], digest: images.multi.manifestDigest, platforms: ['linux/arm64'], filtered: [images.amd64.manifestDigest] });
  t.match(summary.images[0], { platforms: ['linux/amd64'] }, 'a single image: its platform from the config');
  t.equal(summary.since, null);
  const fetched = reg.count({ kind: 'blob', method: 'GET' });
  t.ok(fetched > 0, 'exporting pulled through the connected mirror');

  const again = await world.exportTo(path.join(world.dir, 'again'), REFS, { platforms: ['linux/arm64'] });
  t.same(again.errors, []);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), fetched, 'a second export reads the cache only');

  const { mirror, empty } = await world.disconnected();
  const imported = await world.importInto(mirror, out);
  t.equal(imported.images.length, 4);
  t.equal(imported.written.blobs, blobs.length, 'every blob copied once');
  await pullsImage(t, mirror, 'team/single', '1', images.single);
  await pullsImage(t, mirror, 'team/single', images.single.manifestDigest, images.single);
  await pullsImage(t, mirror, 'team/a', '1', images.a);
  await pullsImage(t, mirror, 'team/b', '1', images.b);
  await pullsImage(t, mirror, 'team/multi', images.arm64.manifestDigest, images.arm64);
  const idx = await request(`${mirror.url}/v2/team/multi/manifests/1`, { headers: { accept: ACCEPT } });
  t.equal(sha256(idx.body), images.multi.manifestDigest, 'the index keeps its digest');
  t.equal(empty.count(), 0, 'the disconnected upstream was never asked for imported content');
  const amd = await request(`${mirror.url}/v2/team/multi/manifests/${images.amd64.manifestDigest}`, { headers: { accept: ACCEPT } });
  t.equal(amd.status, 404, 'the filtered-out platform answers 404');

  const rerun = await world.importInto(mirror, out);
  t.equal(rerun.written.blobs, 0, 'importing again copies nothing');
  t.equal(rerun.skipped.blobs, blobs.length);
});

t.test('a tar export; an incremental export after a new tag carries only the new blobs', async (t) => {
  const world = await startTransferWorld(t);
  const first = path.join(world.dir, 'first.tar');
  const r1 = await world.exportTo(first, [REFS[2]!]);
  t.same(r1.errors, []);
  t.ok(existsSync(first) && !existsSync(`${first}.partial`), 'the tar takes its name once complete');
  const a2 = buildImage({ layers: [world.images.a.layers[0]!, buildLayer({ 'etc/a2.txt': 'a2\n' })], labels: { image: 'a2' } });
  const next = world.reg.pushImage('team/a', '2', a2);
  const second = path.join(world.dir, 'second.tar');
  const r2 = await world.exportTo(second, [REFS[2]!, `${UP}/team/a:2`], { since: r1.summary });
  t.same(r2.errors, []);
  t.equal(r2.summary.since?.id, r1.summary.id, 'the summary names the export it follows');
  const carriedLeaves = r2.summary.carried.digests.filter((d) => d !== next && d !== world.images.a.manifestDigest);
  t.equal(carriedLeaves.length, 2, 'only the new config and layer (manifests always travel)');
  t.ok(r2.leftOut.blobs >= 3, 'what the first trip carried stays out');

  const { mirror, empty } = await world.disconnected();
  await world.importInto(mirror, first);
  const incremental = await world.importInto(mirror, second);
  t.same(incremental.images.map((i) => i.reference), [REFS[2], `${UP}/team/a:2`]);
  const m = await request(`${mirror.url}/v2/team/a/manifests/2`, { headers: { accept: ACCEPT } });
  t.equal(sha256(m.body), next);
  t.equal(empty.count(), 0);

  const { mirror: fresh } = await world.disconnected();
  await t.rejects(world.importInto(fresh, second), /neither in the layout nor in the cache/, 'an incremental export needs its predecessor imported first');
});
