import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { buildImage, buildIndex, buildLayer, MediaTypes, quickImage, randomLayer } from '../fixtures/images.js';
import { tar } from '../fixtures/tar.js';

const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('layers are real tar.gz that the system tar reads', (t) => {
  const longDir = `deep/${'d'.repeat(90)}/${'e'.repeat(60)}`;
  const layer = buildLayer({
    'etc/hello.txt': 'hello\n',
    'usr/bin/tool': Buffer.from([0, 1, 2, 3, 255]),
    'empty/': '',
    [`${longDir}/file-with-a-long-path.txt`]: 'x'.repeat(1000),
  });
  t.equal(layer.digest, `sha256:${hex(layer.gz)}`);
  t.equal(layer.diffId, `sha256:${hex(gunzipSync(layer.gz))}`, 'diff_id is the sha256 of the uncompressed tar');
  t.equal(layer.diffId, `sha256:${hex(layer.tar)}`);
  t.equal(layer.size, layer.gz.length);
  t.equal(layer.tar.length % 512, 0);

  const dir = t.testdir();
  const file = join(dir, 'layer.tar.gz');
  writeFileSync(file, layer.gz);
  const listing = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n');
  t.same(listing, [
    'etc/',
    'etc/hello.txt',
    'usr/',
    'usr/bin/',
    'usr/bin/tool',
    'empty/',
    'deep/',
    `deep/${'d'.repeat(90)}/`,
    `${longDir}/`,
    `${longDir}/file-with-a-long-path.txt`,
  ]);
  const out = join(dir, 'out');
  execFileSync('mkdir', [out]);
  execFileSync('tar', ['-xzf', file, '-C', out]);
  t.equal(readFileSync(join(out, 'etc/hello.txt'), 'utf8'), 'hello\n');
  t.same([...readFileSync(join(out, 'usr/bin/tool'))], [0, 1, 2, 3, 255]);
  t.equal(readFileSync(join(out, longDir, 'file-with-a-long-path.txt'), 'utf8'), 'x'.repeat(1000));
  t.end();
});

t.test('tar output is deterministic and checksummed', (t) => {
  const a = tar([{ path: 'a', type: 'file', content: Buffer.from('1') }]);
  const b = tar([{ path: 'a', type: 'file', content: Buffer.from('1') }]);
  t.ok(a.equals(b));
  t.equal(a.length, 512 * 4, 'header + one data block + two zero blocks');
  const header = a.subarray(0, 512);
  const stored = parseInt(header.subarray(148, 154).toString('ascii'), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  t.equal(stored, sum);
  t.equal(header.subarray(257, 263).toString('latin1'), 'ustar\0');
  t.end();
});

t.test('randomLayer: deterministic, incompressible, about the asked size', (t) => {
  const a = randomLayer(3 * 1024 * 1024, 'seed-a');
  const again = randomLayer(3 * 1024 * 1024, 'seed-a');
  const b = randomLayer(3 * 1024 * 1024, 'seed-b');
  t.equal(a.digest, again.digest);
  t.not(a.digest, b.digest);
  t.ok(a.gz.length >= 3 * 1024 * 1024, 'gzip cannot shrink it');
  t.ok(a.gz.length < 3 * 1024 * 1024 + 4096);
  t.equal(a.diffId, `sha256:${hex(gunzipSync(a.gz))}`);
  const dir = t.testdir();
  writeFileSync(join(dir, 'r.tgz'), a.gz);
  t.equal(execFileSync('tar', ['-tzf', join(dir, 'r.tgz')], { encoding: 'utf8' }).trim(), 'random.bin');
  t.end();
});

t.test('buildImage: config and manifest line up (oci and docker)', (t) => {
  const layers = [buildLayer({ a: '1' }), buildLayer({ b: '2' })];
  for (const format of ['oci', 'docker'] as const) {
    const img = buildImage({ layers, format, architecture: 'arm64', variant: 'v8' });
    const config = JSON.parse(img.config.bytes.toString()) as Record<string, unknown>;
    t.match(config, { architecture: 'arm64', variant: 'v8', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } });
    t.equal(img.config.digest, `sha256:${hex(img.config.bytes)}`);
    t.equal(img.manifestDigest, `sha256:${hex(img.manifest)}`);
    const manifest = JSON.parse(img.manifest.toString()) as {
      schemaVersion: number;
      mediaType: string;
      config: { mediaType: string; digest: string; size: number };
      layers: Array<{ mediaType: string; digest: string; size: number }>;
    };
    t.equal(manifest.schemaVersion, 2);
    t.equal(manifest.mediaType, format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest);
    t.equal(img.mediaType, manifest.mediaType);
    t.same(manifest.config, { mediaType: img.config.mediaType, digest: img.config.digest, size: img.config.bytes.length });
    t.same(
      manifest.layers.map((l) => [l.digest, l.size, l.mediaType]),
      layers.map((l) => [l.digest, l.gz.length, format === 'oci' ? MediaTypes.ociLayerGzip : MediaTypes.dockerLayerGzip]),
    );
  }
  t.end();
});

t.test('buildIndex: platform descriptors of exact child bytes', (t) => {
  const amd = quickImage('multi', { architecture: 'amd64' });
  const arm = quickImage('multi', { architecture: 'arm64', variant: 'v8' });
  t.not(amd.manifestDigest, arm.manifestDigest);
  const index = buildIndex([amd, arm]);
  const inner = buildIndex([amd], 'docker');
  const nested = buildIndex([arm], 'oci', [inner]);
  const body = JSON.parse(index.manifest.toString()) as { mediaType: string; manifests: Array<Record<string, unknown>> };
  t.equal(body.mediaType, MediaTypes.ociIndex);
  t.equal(index.manifestDigest, `sha256:${hex(index.manifest)}`);
  t.same(body.manifests, [
    { mediaType: MediaTypes.ociManifest, digest: amd.manifestDigest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MediaTypes.ociManifest, digest: arm.manifestDigest, size: arm.manifest.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  t.equal(inner.mediaType, MediaTypes.dockerList);
  t.match(JSON.parse(nested.manifest.toString()), { manifests: [{ digest: arm.manifestDigest }, { digest: inner.manifestDigest, mediaType: MediaTypes.dockerList }] });
  t.end();
});
