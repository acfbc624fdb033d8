import t from 'tap';
import { request } from '../fixtures/http.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';
import { cosignKey, cosignSign, COSIGN_SIG_ARTIFACT } from '../fixtures/cosign.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

t.test('referrers: true mirrors an image\'s signatures and SBOMs with it, ready for an upstream that is gone', async (t) => {
  const img = quickImage('signed-sync');
  const { reg, mirror } = await startSyncWorld(t, {
    registry: { referrers: true },
    sync: [
      { name: 'all', upstream: UP, repository: 'team/app', tags: ['1'], referrers: true },
      { name: 'signatures', upstream: UP, repository: 'team/other', tags: ['1'], referrers: [COSIGN_SIG_ARTIFACT] },
      { name: 'none', upstream: UP, repository: 'team/plain', tags: ['1'] },
    ],
  });
  const key = cosignKey(t.testdir());
  const subject = { digest: img.manifestDigest, size: img.manifest.length };
  for (const repo of ['team/app', 'team/other', 'team/plain']) reg.pushImage(repo, '1', img);
  const sig = cosignSign(reg, 'team/app', subject, key, { as: 'referrer' });
  const otherSig = cosignSign(reg, 'team/other', subject, key, { as: 'referrer' });
  const sbomLayer = reg.putBlob('team/other', Buffer.from('{"spdxVersion":"SPDX-2.3"}'));
  const empty = reg.putBlob('team/other', Buffer.from('{}'));
  const sbom = reg.putManifest(
    'team/other',
    undefined,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/spdx+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }, layers: [{ mediaType: 'application/spdx+json', digest: sbomLayer, size: 26 }], subject: { mediaType: OCI_MANIFEST, ...subject } })),
    OCI_MANIFEST,
  );
  cosignSign(reg, 'team/plain', subject, key, { as: 'referrer' });

  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries.map((e) => e.errors)));
  const byJob = Object.fromEntries(run.entries.map((e) => [e.job, e.images[0]]));
  t.match(byJob['all'], { status: 'synced', manifests: 2 }, 'the image and its signature');
  t.match(byJob['signatures'], { status: 'synced', manifests: 2 }, 'only the signature type asked for');
  t.match(byJob['none'], { status: 'synced', manifests: 1 }, 'no referrers unless asked');

  await reg.stop();
  const list = await request(`${mirror.url}/v2/team/app/referrers/${img.manifestDigest}`);
  t.equal(list.status, 200, 'the referrers list is served with the upstream gone');
  t.same((JSON.parse(list.body.toString()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest), [sig.manifest]);
  const sigManifest = await request(`${mirror.url}/v2/team/app/manifests/${sig.manifest}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(sha256(sigManifest.body), sig.manifest, 'the signature manifest');
  t.equal((await request(`${mirror.url}/v2/team/app/blobs/${sig.payload}`)).status, 200, 'and its payload');
  t.equal((await request(`${mirror.url}/v2/team/other/manifests/${otherSig.manifest}`, { headers: { accept: OCI_MANIFEST } })).status, 200);
  t.not((await request(`${mirror.url}/v2/team/other/manifests/${sbom}`, { headers: { accept: OCI_MANIFEST } })).status, 200, 'the SBOM the filter left out was not mirrored');
});

t.test('from an upstream without the referrers API, cosign\'s .sig tag is mirrored', async (t) => {
  const img = quickImage('legacy-sync');
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/app', tags: ['1'], referrers: true }] });
  reg.pushImage('team/app', '1', img);
  const sig = cosignSign(reg, 'team/app', { digest: img.manifestDigest, size: img.manifest.length }, cosignKey(t.testdir()));
  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  t.match(run.entries[0]?.images[0], { status: 'synced', manifests: 2 });
  await reg.stop();
  const tag = `${img.manifestDigest.replace(':', '-')}.sig`;
  const res = await request(`${mirror.url}/v2/team/app/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(res.status, 200, 'the .sig tag is served with the upstream gone');
  t.equal(res.headers['docker-content-digest'], sig.manifest);
});

t.test('referrers config: true, false or artifact types', async (t) => {
  const { parseConfig } = await import('../../src/config/index.js');
  const cfg = (referrers: unknown) => parseConfig({ storage: { path: '/tmp/x' }, upstreams: { [UP]: { url: 'https://r.test' } }, sync: [{ upstream: UP, repository: 'a', tags: ['1'], referrers }] }, { baseDir: '/tmp', env: {} });
  t.same(cfg([COSIGN_SIG_ARTIFACT]).sync.entries[0]?.referrers, [COSIGN_SIG_ARTIFACT]);
  t.equal(cfg(true).sync.entries[0]?.referrers, true);
  for (const bad of ['yes', [], ['not a type'], [1]]) t.throws(() => cfg(bad), /referrers: must be true, false, or a list of artifact types/, JSON.stringify(bad));
});
