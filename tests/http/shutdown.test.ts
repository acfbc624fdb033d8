import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { request } from '../fixtures/http.js';
import { storageLayout } from '../../src/storage/layout.js';
import { startServe } from '../fixtures/regmirror-process.js';

t.test('SIGTERM during a transfer: no new connections, the transfer finishes, the blob is cached, exit 0', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(2 * 1024 * 1024, 'sigterm');
  const digest = reg.putBlob('team/app', layer.gz);
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 512 * 1024, release: new Promise<void>((r) => (release = r)), times: 1 });
  t.teardown(() => release());

  const dir = t.testdir({});
  const storage = path.join(dir, 'cache');
  const config = path.join(dir, 'c.json');
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: reg.url } }, storage: { path: storage }, shutdownGrace: '30s', log: { level: 'info' } }));
  const serve = await startServe(t, config);
  const url = serve.url;
  let exited = false;
  const exit = serve.daemon.exit.then((e) => ((exited = true), e.code));

  // A client pulling the blob; resolves `firstBytes` as soon as some bytes arrived.
  let firstBytes!: () => void;
  const gotSome = new Promise<void>((r) => (firstBytes = r));
  const transfer = new Promise<{ body: Buffer; complete: boolean }>((resolve, reject) => {
    const req = httpRequest(`${url}/v2/team/app/blobs/${digest}`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        firstBytes();
      });
      res.on('close', () => resolve({ body: Buffer.concat(chunks), complete: res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
  await gotSome;

  serve.daemon.kill('SIGTERM');
  await serve.daemon.waitForLine(/shutting down/, 30_000);
  await t.rejects(request(`${url}/v2/`), { code: 'ECONNREFUSED' }, 'no new connections once shutting down');
  t.equal(exited, false, 'still running while a transfer is in flight');

  release();
  const { body, complete } = await transfer;
  t.ok(complete, 'the transfer finished');
  t.equal(body.length, layer.gz.length);
  t.equal(sha256(body), digest);
  t.equal(await exit, 0, 'exit 0 after SIGTERM');
  const hex = digest.slice('sha256:'.length);
  t.ok(existsSync(path.join(storageLayout(storage).blobsDir, 'sha256', hex.slice(0, 2), hex)), 'the blob was committed to the cache before exit');
});
