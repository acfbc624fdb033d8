import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { request } from '../fixtures/http.js';
import { storageLayout } from '../../src/storage/layout.js';
import { startServe } from '../fixtures/regmirror-process.js';
import { until } from '../fixtures/poll.js';
import type { TeardownHost } from '../fixtures/teardown.js';

/** An upstream whose blob stops after 512 KiB until released (at teardown at the latest). */
async function heldBlob(t: TeardownHost, seed: string) {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(2 * 1024 * 1024, seed);
  const digest = reg.putBlob('team/app', layer.gz);
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 512 * 1024, release: new Promise<void>((r) => (release = r)), times: 1 });
  t.teardown(() => release());
  return { reg, layer, digest, release: () => release() };
}

t.test('SIGTERM during a transfer: no new connections, the transfer finishes, the blob is cached, exit 0', async (t) => {
  const { reg, layer, digest, release } = await heldBlob(t, 'sigterm');

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
  const shutting = await serve.daemon.waitForLine(/shutting down/, 30_000);
  t.match(shutting.input, /"msg":"shutting down: no new connections, waiting up to 30s for 1 transfer and 1 download in flight"/, 'it says what it waits for');
  await t.rejects(request(`${url}/v2/`), { code: 'ECONNREFUSED' }, 'no new connections once shutting down');
  t.equal(exited, false, 'still running while a transfer is in flight');

  release();
  const { body, complete } = await transfer;
  t.ok(complete, 'the transfer finished');
  t.equal(body.length, layer.gz.length);
  t.equal(sha256(body), digest);
  t.equal(await exit, 0, 'exit 0 after SIGTERM');
  t.match(serve.daemon.lines.at(-1), /"msg":"stopped"/, 'the last line says it stopped');
  const hex = digest.slice('sha256:'.length);
  t.ok(existsSync(path.join(storageLayout(storage).blobsDir, 'sha256', hex.slice(0, 2), hex)), 'the blob was committed to the cache before exit');
});

t.test('a transfer still running when shutdownGrace ends is cut, logged as aborted with its bytes, and counted', async (t) => {
  const { reg, layer, digest } = await heldBlob(t, 'sigterm-cut');
  const dir = t.testdir({});
  const serve = await startServe(t, { dir, config: { upstreams: { 'docker.io': { url: reg.url } }, storage: { path: path.join(dir, 'cache') }, shutdownGrace: '1s' } });
  let received = 0;
  const cut = new Promise<number>((resolve) => {
    const req = httpRequest(`${serve.url}/v2/team/app/blobs/${digest}`, { agent: false, headers: { 'user-agent': 'containerd/1.6.20' } }, (res) => {
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('close', () => resolve(received));
      res.on('error', () => resolve(received));
    });
    req.on('error', () => resolve(received));
    req.end();
  });
  await until('some bytes arrived', () => received > 0);
  serve.daemon.kill('SIGTERM');
  t.equal((await serve.daemon.exit).code, 0);
  const got = await cut;
  t.ok(got < layer.gz.length, 'the client got part of the blob');
  const access = serve.daemon.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'request' && l['route'] === 'blob');
  t.match(access, { status: 200, aborted: true, client: '127.0.0.1', userAgent: 'containerd/1.6.20' }, 'the access line says the response was cut');
  t.ok(typeof access?.['bytes'] === 'number' && (access['bytes'] as number) >= got, `it counts the bytes that went out (${String(access?.['bytes'])})`);
  t.match(serve.daemon.lines.at(-1), /"cutShort":1,"msg":"stopped: 1 transfer cut short by the shutdown grace"/);
});
