import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../fixtures/http.js';
import { sha256 } from '../fixtures/images.js';
import { startTransferWorld, UP } from '../fixtures/transfer.js';
import { cosignKey, cosignSign, COSIGN_SIG_ARTIFACT } from '../fixtures/cosign.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

t.test('export --referrers carries signatures across the air gap; the disconnected mirror lists and serves them', async (t) => {
  const world = await startTransferWorld(t, { registry: { referrers: true } });
  const { images, reg } = world;
  const subject = { digest: images.single.manifestDigest, size: images.single.manifest.length };
  const sig = cosignSign(reg, 'team/single', subject, cosignKey(world.dir), { as: 'referrer' });
  const ref = `${UP}/team/single:1`;

  const plain = await world.exportTo(path.join(world.dir, 'plain'), [ref]);
  t.same(plain.errors, []);
  t.equal(plain.summary.images.length, 1, 'without --referrers: the image alone');

  const out = path.join(world.dir, 'signed');
  const result = await world.exportTo(out, [ref], { referrers: true });
  t.same(result.errors, []);
  t.same(result.summary.images.map((i) => i.reference), [ref, `${UP}/team/single@${sig.manifest}`], 'the image, then its signature by digest');
  const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  t.same(index.manifests.map((m) => m.digest), [images.single.manifestDigest, sig.manifest]);

  const filtered = await world.exportTo(path.join(world.dir, 'sboms'), [ref], { referrers: ['application/spdx+json'] });
  t.equal(filtered.summary.images.length, 1, 'a filter naming another artifact type carries no signature');

  const { mirror, empty } = await world.disconnected();
  const imported = await world.importInto(mirror, out);
  t.equal(imported.images.length, 2);
  const list = await request(`${mirror.url}/v2/team/single/referrers/${images.single.manifestDigest}?artifactType=${encodeURIComponent(COSIGN_SIG_ARTIFACT)}`);
  t.equal(list.status, 200, 'the offline mirror answers the referrers API for what was imported');
  t.same((JSON.parse(list.body.toString()) as { manifests: { digest: string; artifactType: string }[] }).manifests.map((m) => [m.digest, m.artifactType]), [[sig.manifest, COSIGN_SIG_ARTIFACT]]);
  const m = await request(`${mirror.url}/v2/team/single/manifests/${sig.manifest}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(sha256(m.body), sig.manifest);
  t.equal((await request(`${mirror.url}/v2/team/single/blobs/${sig.payload}`)).status, 200, 'and the signed payload');
  t.equal(empty.count(), 0, 'the disconnected upstream was never asked');
});

t.test('from an upstream without the referrers API, cosign\'s .sig tag travels under its tag', async (t) => {
  const world = await startTransferWorld(t);
  const { images, reg } = world;
  const sig = cosignSign(reg, 'team/single', { digest: images.single.manifestDigest, size: images.single.manifest.length }, cosignKey(world.dir));
  const tag = `${images.single.manifestDigest.replace(':', '-')}.sig`;
  const out = path.join(world.dir, 'legacy');
  const result = await world.exportTo(out, [`${UP}/team/single:1`], { referrers: true });
  t.same(result.errors, []);
  t.same(result.summary.images.map((i) => i.reference), [`${UP}/team/single:1`, `${UP}/team/single:${tag}`]);
  const { mirror } = await world.disconnected();
  await world.importInto(mirror, out);
  const res = await request(`${mirror.url}/v2/team/single/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(res.status, 200, 'the .sig tag is served offline');
  t.equal(res.headers['docker-content-digest'], sig.manifest);
});

t.test('beside a running serve, the referrers come through its admin socket', async (t) => {
  const { openAdmin } = await import('../../src/admin/index.js');
  const { remoteExportSource } = await import('../../src/transfer/index.js');
  const world = await startTransferWorld(t, { registry: { referrers: true } });
  const { images, reg } = world;
  const sig = cosignSign(reg, 'team/single', { digest: images.single.manifestDigest, size: images.single.manifest.length }, cosignKey(world.dir), { as: 'referrer' });
  const source = remoteExportSource((method, p, body, headers) => openAdmin(world.connected.storage, method, p, body, headers));
  const repo = { upstream: UP, name: 'team/single' as never };
  t.same(await source.referrers(repo, images.single.manifestDigest as never), [{ reference: { kind: 'digest', digest: sig.manifest }, artifactType: COSIGN_SIG_ARTIFACT }]);
  t.same(await source.referrers(repo, `sha256:${'1'.repeat(64)}` as never), [], 'a subject without referrers');
});
