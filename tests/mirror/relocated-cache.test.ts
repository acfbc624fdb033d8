import t from 'tap';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildImage, buildLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';

// The air-gapped workflow the README documents: warm a mirror where the upstream is reachable, copy
// its storage directory (the volume) to another place, and serve from it with the upstream unreachable.
t.test('a copied cache serves tags and blobs from a mirror that cannot reach its upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const img = buildImage({ layers: [buildLayer({ 'app.txt': 'carried across the air gap' })], format: 'oci' });
  reg.pushImage('library/app', '1.0', img);
  const connected = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const layerDigest = img.layers[0]!.digest;
  t.equal((await request(`${connected.url}/v2/app/manifests/1.0`)).status, 200);
  t.equal((await request(`${connected.url}/v2/app/blobs/${img.config.digest}`)).status, 200);
  t.equal((await request(`${connected.url}/v2/app/blobs/${layerDigest}`)).status, 200);
  await connected.app.settled();
  await connected.close();
  const deadUrl = reg.url;
  await reg.stop();

  const moved = mkdtempSync(path.join(os.tmpdir(), 'regmirror-moved-'));
  t.teardown(() => rmSync(moved, { recursive: true, force: true }));
  cpSync(connected.storage, moved, { recursive: true });
  // Gone, so nothing the moved cache still pointed at could be read from its old place.
  rmSync(connected.storage, { recursive: true, force: true });

  // manifestTTL 0: every tag is past its TTL, so each pull tries the (gone) upstream first.
  const airgapped = await startMirror(t, { upstreams: { 'docker.io': { url: deadUrl } }, storage: moved, manifestTTL: '0' });
  const manifest = await request(`${airgapped.url}/v2/app/manifests/1.0`);
  t.equal(manifest.status, 200, 'the tag is served stale');
  t.equal(manifest.headers['docker-content-digest'], img.manifestDigest);
  const byDigest = await request(`${airgapped.url}/v2/app/manifests/${img.manifestDigest}`);
  t.equal(byDigest.status, 200);
  for (const digest of [img.config.digest, layerDigest]) {
    const blob = await request(`${airgapped.url}/v2/app/blobs/${digest}`);
    t.equal(blob.status, 200);
    t.equal(sha256(blob.body), digest);
  }
  t.equal((await request(`${airgapped.url}/v2/app/manifests/2.0`)).status >= 400, true, 'an image never carried over is an error, not a hang');
});
