// Test images for the upstream: random (incompressible) layers written to files, then pushed
// through the registry push API exactly as a client would (monolithic POST + PUT uploads).
import { createHash, randomBytes, randomFillSync, sign } from 'node:crypto';
import { createReadStream, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

const MiB = 1024 * 1024;
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Writes `size` random bytes to `path` in 1 MiB chunks; returns its descriptor. */
export function randomBlobFile(path, size) {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(MiB);
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, MiB);
      const piece = chunk.subarray(0, n);
      randomFillSync(piece);
      hash.update(piece);
      writeSync(fd, piece);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return { path, size, digest: `sha256:${hash.digest('hex')}` };
}

function bytesBlob(bytes) {
  return { bytes, size: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

/** `size` random bytes held in memory, for small layers pushed while a run goes on. */
export function randomBlob(size) {
  return bytesBlob(randomBytes(size));
}

function send(url, { method, headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

async function pushBlob(base, repo, blob) {
  const start = await send(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  if (start.status !== 202) throw new Error(`upload start for ${repo}: ${start.status} ${start.body}`);
  const location = new URL(start.headers.location, base);
  location.searchParams.set('digest', blob.digest);
  const body = blob.bytes ?? createReadStream(blob.path, { highWaterMark: MiB });
  const put = await send(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': blob.size },
    body,
  });
  if (put.status !== 201) throw new Error(`upload of ${blob.digest} to ${repo}: ${put.status} ${put.body}`);
}

/**
 * Pushes an OCI image whose layers are the given blob files; returns the manifest digest and
 * every blob descriptor (config included).
 */
export async function pushImage(base, repo, tag, layers) {
  const config = bytesBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        // Random layers are not tarballs; nothing in a copy to dir: reads diff_ids, but keep them well formed.
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
  );
  for (const blob of [config, ...layers]) await pushBlob(base, repo, blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
    }),
  );
  const put = await send(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST, 'content-length': manifest.length },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest push ${repo}:${tag}: ${put.status} ${put.body}`);
  const digest = bytesBlob(manifest).digest;
  return { repo, tag, manifestDigest: digest, manifestSize: manifest.length, blobs: [config, ...layers] };
}

/**
 * A cosign key-based signature of `subject` (the simple-signing payload, its ECDSA signature in the
 * layer annotation) pushed under the `sha256-<hex>.sig` tag, as `cosign sign --key` writes it.
 */
export async function pushCosignSignature(base, repo, subject, privateKey) {
  const payload = bytesBlob(
    Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': repo }, image: { 'docker-manifest-digest': subject }, type: 'cosign container image signature' }, optional: null })),
  );
  const config = bytesBlob(Buffer.from('{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}'));
  for (const blob of [payload, config]) await pushBlob(base, repo, blob);
  const signature = sign('sha256', payload.bytes, privateKey).toString('base64');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: payload.digest, size: payload.size, annotations: { 'dev.cosignproject.cosign/signature': signature } }],
    }),
  );
  const tag = `${subject.replace(':', '-')}.sig`;
  const put = await send(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST, 'content-length': manifest.length }, body: manifest });
  if (put.status !== 201) throw new Error(`signature push ${repo}:${tag}: ${put.status} ${put.body}`);
}

// A real image's layers are uneven: 160+128+96+64+32+16+8+8 of 512.
const ROLLOUT_SHARES = [20, 16, 12, 8, 4, 2, 1, 1];

/** The sizes of the rollout scenario's 8 layers, `total` bytes in all. */
export function rolloutLayerSizes(total) {
  const unit = Math.floor(total / ROLLOUT_SHARES.reduce((a, b) => a + b, 0));
  const sizes = ROLLOUT_SHARES.map((s) => s * unit);
  sizes[0] += total - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

/**
 * Pushes the rollout scenario's 8-layer image of `total` bytes to `base` as `repo:tag` (layer files
 * written under `dir`, removed once pushed); `bytes` is every blob's size summed, config included.
 */
export async function pushRolloutImage(base, repo, tag, dir, total) {
  const layers = rolloutLayerSizes(total).map((size, i) => randomBlobFile(join(dir, `layer-${i}`), size));
  const image = await pushImage(base, repo, tag, layers);
  for (const l of layers) rmSync(l.path);
  return { ...image, bytes: image.blobs.reduce((n, b) => n + b.size, 0) };
}

/** Layer files for the images of a run, under `dir`. */
export function makeLayers(dir, bigSize, multiSizes) {
  const big = randomBlobFile(join(dir, 'big.layer'), bigSize);
  const multi = multiSizes.map((size, i) => randomBlobFile(join(dir, `multi-${i}.layer`), size));
  return { big, multi };
}
