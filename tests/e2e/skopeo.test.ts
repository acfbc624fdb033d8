import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildImage, buildIndex, buildLayer, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { toolsMissing } from '../fixtures/tools.js';

const run = promisify(execFile);
const tools = toolsMissing(['skopeo']);
if (tools.skip && tools.required) t.fail(`e2e: ${tools.skip}`);

t.test('skopeo copies images through the mirror from the test upstream', { skip: tools.skip }, async (t) => {
  const dir = t.testdir({ 'policy.json': JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }), 'registries.conf': '' });
  const reg = await startTestRegistry(t);
  const img = buildImage({ layers: [buildLayer({ 'etc/hello': 'hello from the test upstream\n' }), randomLayer(2 * 1024 * 1024, 'skopeo')], format: 'oci' });
  reg.pushImage('library/alpine', '3.20', img);
  const amd = buildImage({ layers: [buildLayer({ 'arch': 'amd64' })], architecture: 'amd64', os: 'linux' });
  const arm = buildImage({ layers: [buildLayer({ 'arch': 'arm64' })], architecture: 'arm64', os: 'linux' });
  const index = buildIndex([amd, arm], 'oci');
  reg.pushIndex('team/multi', '1', index);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });

  const skopeo = (...args: string[]) =>
    run('skopeo', ['--policy', path.join(dir, 'policy.json'), ...args], {
      env: { ...process.env, CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf') },
      timeout: 60_000,
    });

  await skopeo('copy', '--src-tls-verify=false', `docker://${mirror.host}/library/alpine:3.20`, `dir:${path.join(dir, 'out1')}`);
  const manifest = readFileSync(path.join(dir, 'out1', 'manifest.json'));
  t.equal(sha256(manifest), img.manifestDigest, 'skopeo received the upstream manifest byte for byte');
  for (const layer of img.layers) {
    t.equal(sha256(readFileSync(path.join(dir, 'out1', layer.digest.slice('sha256:'.length)))), layer.digest, 'layer verified');
  }
  const blobGets = reg.count({ kind: 'blob', method: 'GET' });
  t.equal(blobGets, img.layers.length + 1, 'layers and config fetched once each');

  await skopeo('copy', '--src-tls-verify=false', `docker://${mirror.host}/alpine:3.20`, `dir:${path.join(dir, 'out2')}`);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), blobGets, 'a second pull sends no blob request upstream');

  await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${mirror.host}/team/multi:1`, `dir:${path.join(dir, 'out3')}`);
  t.equal(sha256(readFileSync(path.join(dir, 'out3', 'manifest.json'))), index.manifestDigest, 'the index arrives intact');

  await skopeo('--override-arch', 'arm64', 'copy', '--src-tls-verify=false', `docker://${mirror.host}/team/multi:1`, `dir:${path.join(dir, 'arm')}`);
  t.equal(sha256(readFileSync(path.join(dir, 'arm', 'manifest.json'))), arm.manifestDigest, 'the index resolves to the asked platform');

  const missing = await skopeo('copy', '--src-tls-verify=false', `docker://${mirror.host}/library/alpine:nope`, `dir:${path.join(dir, 'out4')}`).then(
    () => undefined,
    (err: { stderr?: string }) => err.stderr ?? '',
  );
  t.match(missing, /manifest unknown|not found/i, 'a missing tag fails as not found');
});
