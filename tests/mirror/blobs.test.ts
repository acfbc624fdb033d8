import t from 'tap';
import { request as httpRequest } from 'node:http';
import { buildImage, buildLayer, randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { pauseNextBlobGet } from '../fixtures/cache.js';
import { errorCode, request } from '../fixtures/http.js';

t.test('cold GET streams to the client before upstream finished; warm GET needs no upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(4 * 1024 * 1024, 'stream');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });

  const release = pauseNextBlobGet(reg, 1024 * 1024);

  // Read until some bytes arrived while upstream is still paused: proof of streaming, not store-and-forward.
  const firstBytes = await new Promise<{ got: number; rest: Promise<Buffer> }>((resolve, reject) => {
    const req = httpRequest(`${mirror.url}/v2/team/app/blobs/${digest}`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let got = 0;
      let resolved = false;
      const rest = new Promise<Buffer>((done) => res.on('end', () => done(Buffer.concat(chunks))));
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (!resolved && got > 0) {
          resolved = true;
          resolve({ got, rest });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
  t.ok(firstBytes.got > 0 && firstBytes.got < layer.gz.length, 'first bytes arrived while upstream was paused');
  release();
  const body = await firstBytes.rest;
  t.equal(sha256(body), digest);

  reg.resetRequests();
  const warm = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.equal(warm.status, 200);
  t.equal(sha256(warm.body), digest);
  t.equal(warm.headers['content-length'], String(layer.gz.length));
  t.equal(warm.headers['docker-content-digest'], digest);
  t.equal(warm.headers['content-type'], 'application/octet-stream');
  t.equal(reg.count({ kind: 'blob' }), 0, 'no upstream request for a cached blob');
});

t.test('16 concurrent cold GETs cause one upstream GET and 16 correct bodies', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(8 * 1024 * 1024, 'coalesce');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  // Slow upstream so all 16 requests arrive while the first download is in flight.
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'throttle', bytesPerSecond: 16 * 1024 * 1024, times: 1 });
  const bodies = await Promise.all(Array.from({ length: 16 }, () => request(`${mirror.url}/v2/team/app/blobs/${digest}`)));
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'exactly one upstream GET');
  t.same(
    bodies.map((b) => [b.status, b.complete, sha256(b.body)]),
    Array.from({ length: 16 }, () => [200, true, digest]),
  );
});

t.test('wrong bytes from upstream are never cached, and no client sees a clean end', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(1024 * 1024, 'wrong');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const remove = reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'wrong-bytes' });
  const bad = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.equal(bad.status, 200, 'headers went out before the digest could be checked');
  t.equal(bad.complete, false, 'the body was cut short, so the client cannot mistake it for the blob');
  remove();
  const good = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.ok(mirror.logs.some((l) => l.includes('blob download failed')), 'the failure is logged');
  t.equal(sha256(good.body), digest);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 2, 'fetched again: the bad copy was not cached');
});

t.test('an upstream that drops mid-body leaves nothing cached', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(1024 * 1024, 'drop');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'drop-after', bytes: 300_000, times: 1 });
  const cut = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  // A short 200 once the client's answer had started; a 503 when the upstream broke before its first byte went out.
  t.ok(cut.status === 200 ? !cut.complete : cut.status === 503, `the client sees a short body or an error, never a whole blob (${cut.status})`);
  const again = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.equal(sha256(again.body), digest);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 2);
});

t.test('a client that leaves does not cancel the shared download', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(4 * 1024 * 1024, 'leave');
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const release = pauseNextBlobGet(reg, 512 * 1024);
  await new Promise<void>((resolve) => {
    const req = httpRequest(`${mirror.url}/v2/team/app/blobs/${digest}`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.end();
  });
  const follower = request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  release();
  const body = await follower;
  t.equal(sha256(body.body), digest, 'the second client got the whole blob');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1, 'from the same single download');
});

t.test('HEAD of an uncached blob asks upstream HEAD and downloads nothing', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = buildLayer({ 'a.txt': 'head me' });
  const digest = reg.putBlob('team/app', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const head = await request(`${mirror.url}/v2/team/app/blobs/${digest}`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], String(layer.gz.length));
  t.equal(head.headers['docker-content-digest'], digest);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 0);
  t.equal(reg.count({ kind: 'blob', method: 'HEAD' }), 1);
  const missing = await request(`${mirror.url}/v2/team/app/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' });
  t.equal(missing.status, 404);
  const missingGet = await request(`${mirror.url}/v2/team/app/blobs/sha256:${'0'.repeat(64)}`);
  t.equal(errorCode(missingGet), 'BLOB_UNKNOWN');
});

t.test('Range on warm and cold blobs: exact 206 and 416', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(256 * 1024, 'range');
  const digest = reg.putBlob('team/app', layer.gz);
  const size = layer.gz.length;
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const url = `${mirror.url}/v2/team/app/blobs/${digest}`;

  const cold = await request(url, { headers: { range: 'bytes=100-' } });
  t.equal(cold.status, 206, 'a resume on a cold blob gets an exact 206 (dockerd rejects a 200)');
  t.equal(cold.headers['content-range'], `bytes 100-${size - 1}/${size}`);
  t.ok(cold.body.equals(layer.gz.subarray(100)));

  const cases: Array<[string, number, number]> = [
    ['bytes=0-99', 0, 99],
    ['bytes=1000-', 1000, size - 1],
    ['bytes=-10', size - 10, size - 1],
    [`bytes=5-${size + 100}`, 5, size - 1],
  ];
  for (const [range, start, end] of cases) {
    const res = await request(url, { headers: { range } });
    t.equal(res.status, 206, range);
    t.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`, range);
    t.equal(res.headers['content-length'], String(end - start + 1), range);
    t.ok(res.body.equals(layer.gz.subarray(start, end + 1)), range);
  }
  const unsatisfiable = await request(url, { headers: { range: `bytes=${size}-` } });
  t.equal(unsatisfiable.status, 416);
  t.equal(unsatisfiable.headers['content-range'], `bytes */${size}`);
  t.equal(errorCode(unsatisfiable), 'RANGE_INVALID');
  const multi = await request(url, { headers: { range: 'bytes=0-1,5-6' } });
  t.equal(multi.status, 200, 'multi-range falls back to the whole blob');
  t.equal(sha256(multi.body), digest);
  const garbage = await request(url, { headers: { range: 'lines=1-2' } });
  t.equal(garbage.status, 200, 'a range unit other than bytes is ignored');
  t.equal(sha256(garbage.body), digest, 'the whole blob');
});

t.test('a restart keeps the cache: blobs and manifests served with the upstream gone', async (t) => {
  const reg = await startTestRegistry(t);
  const img = buildImage({ layers: [buildLayer({ 'x.txt': 'persist' })], format: 'oci' });
  reg.pushImage('team/app', '1', img);
  const first = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const layerDigest = img.layers[0]!.digest;
  await request(`${first.url}/v2/team/app/manifests/1`);
  await request(`${first.url}/v2/team/app/blobs/${layerDigest}`);
  await first.close();
  await reg.stop();

  const second = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage: first.storage });
  const manifest = await request(`${second.url}/v2/team/app/manifests/1`);
  t.equal(manifest.status, 200);
  t.equal(manifest.headers['docker-content-digest'], img.manifestDigest);
  const blob = await request(`${second.url}/v2/team/app/blobs/${layerDigest}`);
  t.equal(blob.status, 200);
  t.equal(sha256(blob.body), layerDigest);
});

t.test('blobs are shared across repositories of one upstream, confirmed across upstreams', async (t) => {
  const hub = await startTestRegistry(t);
  const other = await startTestRegistry(t);
  const layer = buildLayer({ 'shared.txt': 'shared' });
  const digest = hub.putBlob('team/a', layer.gz);
  hub.putBlob('team/b', layer.gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: hub.url }, 'other.io': { url: other.url, library: false } } });
  await request(`${mirror.url}/v2/team/a/blobs/${digest}`);
  // The client has every byte once the digest matched; the commit (fsync, rename, link) follows.
  await mirror.app.settled();
  const sameUpstream = await request(`${mirror.url}/v2/team/b/blobs/${digest}`);
  t.equal(sha256(sameUpstream.body), digest);
  t.equal(hub.count({ kind: 'blob' }), 1, 'same upstream, other repository: served from cache');
  const foreign = await request(`${mirror.url}/v2/other.io/team/a/blobs/${digest}`);
  t.equal(foreign.status, 404, 'an upstream that does not hold the digest never gets it from our cache');
  other.putBlob('team/a', layer.gz);
  const confirmed = await request(`${mirror.url}/v2/other.io/team/a/blobs/${digest}`);
  t.equal(sha256(confirmed.body), digest);
  t.equal(other.count({ kind: 'blob', method: 'GET' }), 0, 'confirmed with a HEAD, not downloaded again');
});
