import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mustRun } from '../fixtures/daemons.js';
import { request } from '../fixtures/http.js';
import { buildImage, buildLayer, sha256 } from '../fixtures/images.js';
import { startTransferWorld } from '../fixtures/transfer.js';
import { LayoutError } from '../../src/transfer/index.js';

t.test('a docker save archive imports under its RepoTags, with its config and layer digests', async (t) => {
  const world = await startTransferWorld(t);
  const base = buildLayer({ 'etc/base.txt': 'base\n' });
  const one = buildImage({ layers: [base, buildLayer({ 'etc/one.txt': 'one\n' })], format: 'docker', labels: { n: '1' } });
  const two = buildImage({ layers: [base], format: 'docker', labels: { n: '2' } });
  const dir = path.join(world.dir, 'saved');
  const layerDir = (i: number) => path.join(dir, `layer${i}`);
  // The classic layout: <id>/layer.tar, <config hex>.json, a symlink where a layer is shared.
  for (const [i, l] of one.layers.entries()) {
    mkdirSync(layerDir(i), { recursive: true });
    writeFileSync(path.join(layerDir(i), 'layer.tar'), l.tar);
  }
  mkdirSync(layerDir(9));
  symlinkSync('../layer0/layer.tar', path.join(layerDir(9), 'layer.tar'));
  writeFileSync(path.join(dir, `${one.config.digest.slice(7)}.json`), one.config.bytes);
  writeFileSync(path.join(dir, `${two.config.digest.slice(7)}.json`), two.config.bytes);
  const manifest = [
    { Config: `${one.config.digest.slice(7)}.json`, RepoTags: ['registry.test/team/saved:1', 'registry.test/team/saved:latest'], Layers: ['layer0/layer.tar', 'layer1/layer.tar'] },
    { Config: `${two.config.digest.slice(7)}.json`, RepoTags: ['registry.test/team/saved:2'], Layers: ['layer9/layer.tar'] },
  ];
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  const archive = path.join(world.dir, 'saved.tar');
  await mustRun('tar', ['-C', dir, '-cf', archive, '.']);

  const { mirror } = await world.disconnected();
  const result = await world.importInto(mirror, archive);
  t.equal(result.kind, 'docker-save');
  t.same(result.images.map((i) => i.reference), ['registry.test/team/saved:1', 'registry.test/team/saved:latest', 'registry.test/team/saved:2']);
  for (const [tag, image] of [['1', one], ['latest', one], ['2', two]] as const) {
    const m = await request(`${mirror.url}/v2/team/saved/manifests/${tag}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    t.equal(m.status, 200);
    t.equal(m.headers['content-type'], 'application/vnd.docker.distribution.manifest.v2+json');
    const body = JSON.parse(m.body.toString()) as { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
    t.equal(body.config.digest, image.config.digest, `${tag}: the config digest is the image ID`);
    t.same(body.layers.map((l) => l.digest), image.layers.map((l) => l.diffId), `${tag}: layer digests are the diff IDs`);
    t.same(new Set(body.layers.map((l) => l.mediaType)), new Set(['application/vnd.docker.image.rootfs.diff.tar']));
    for (const l of image.layers) t.equal(sha256((await request(`${mirror.url}/v2/team/saved/blobs/${l.diffId}`)).body), l.diffId);
  }

  // Broken archives, as directories (the same reader): each refused with what is wrong.

  const good = manifest[0]!;
  const broken: Array<[unknown, RegExp]> = [
    [{}, /must be a non-empty list/],
    [[{ RepoTags: ['registry.test/x:1'] }], /needs "Config" and "Layers"/],
    [[{ ...good, Config: 'nope.json' }], /names the config nope\.json, which is not in the archive/],
    [[{ ...good, Config: `${'0'.repeat(64)}.json` }], /does not match its name/],
    [[{ ...good, Layers: ['layer0/layer.tar'] }], /lists 1 layers, its config 2 diff IDs/],
    [[{ ...good, Layers: ['layer0/layer.tar', 'gone/layer.tar'] }], /names the layer gone\/layer\.tar, which is not in the archive/],
    [[{ ...good, RepoTags: [] }], /has no RepoTags/],
    [[{ ...good, RepoTags: ['Registry.test/X:1'] }], /not a valid image reference/],
  ];
  for (const [i, [entries, message]] of broken.entries()) {
    const copy = path.join(world.dir, `broken-${i}`);
    await mustRun('cp', ['-a', dir, copy]);
    writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(entries));
    if (i === 3) writeFileSync(path.join(copy, `${'0'.repeat(64)}.json`), one.config.bytes);
    const e = await world.importInto(mirror, copy).catch((x: unknown) => x);
    t.ok(e instanceof LayoutError, `broken archive ${i}`);
    t.match((e as Error).message, message);
  }


  // A layer that is not the one its config names.
  writeFileSync(path.join(layerDir(1), 'layer.tar'), two.layers[0]!.tar.subarray(0, 1024));
  const bad = path.join(world.dir, 'bad.tar');
  await mustRun('tar', ['-C', dir, '-cf', bad, '.']);
  const { mirror: fresh } = await world.disconnected();
  const err = await world.importInto(fresh, bad).catch((e: unknown) => e);
  t.ok(err instanceof LayoutError);
  t.match((err as Error).message, /layer1\/layer\.tar does not match its name sha256:/);
});
