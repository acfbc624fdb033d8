import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { randomLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { request } from '../fixtures/http.js';
import { storageLayout } from '../../src/storage/layout.js';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

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
  // Same TypeScript loader as this process (see tests/cli/cli.test.ts).
  const child = spawn(process.execPath, [...process.execArgv, MAIN, 'serve', '--config', config, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of waiters) {
      const m = w.re.exec(stdout);
      if (m) w.resolve(m);
    }
  });
  const until = (re: RegExp) => new Promise<RegExpExecArray>((resolve) => waiters.push({ re, resolve }));
  let exited = false;
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => ((exited = true), resolve(code))));

  const port = (await until(/"address":"127\.0\.0\.1:(\d+)"/))[1];
  const url = `http://127.0.0.1:${port}`;

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

  child.kill('SIGTERM');
  await until(/shutting down/);
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
