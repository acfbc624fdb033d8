import t from 'tap';
import { request as httpRequest } from 'node:http';
import { randomLayer } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import { MiB, pauseNextBlobGet } from '../fixtures/cache.js';
import { accessLines, lineFor } from '../fixtures/access-log.js';
import { until } from '../fixtures/poll.js';

// No client ever gets an empty reply, and the access log says what the client really got.

t.test('an upstream that breaks off before the first byte: an OCI error answer, not an empty reply', async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob('team/app', randomLayer(MiB, 'cut-at-zero').gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'drop-after', bytes: 0, times: 1 });
  const res = await request(`${mirror.url}/v2/team/app/blobs/${digest}`).catch((err: Error) => err);
  if (res instanceof Error) return void t.fail(`the client got no answer at all: ${res.message}`);
  t.equal(res.status, 503);
  t.equal(errorCode(res), 'UNAVAILABLE');
  t.match(res.body.toString(), /upstream docker\.io broke off the blob body/);
  t.notMatch(res.body.toString(), /127\.0\.0\.1|http:/, 'no upstream address in the answer');
  t.match(await lineFor(mirror.logs, res.headers['x-request-id']), { status: 503 });
  t.notOk(mirror.logs.some((l) => l.includes('unexpected error')), 'an upstream failure, not a stack trace');
});

t.test('a body cut short is logged as cut: the status sent, the bytes sent, aborted', async (t) => {
  const reg = await startTestRegistry(t);
  const blob = randomLayer(4 * MiB, 'cut-midway').gz;
  const digest = reg.putBlob('team/app', blob);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  // The upstream drops only once the client holds the first bytes: before them, a cut is a 503 (above).
  let release = () => {};
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: MiB, release: new Promise<void>((resolve) => (release = resolve)), times: 1 });
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'drop-after', bytes: MiB, times: 1 });
  const cut = await new Promise<{ status: number | undefined; headers: Record<string, unknown>; body: Buffer; complete: boolean }>((resolve, reject) => {
    const req = httpRequest(`${mirror.url}/v2/team/app/blobs/${digest}`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('error', () => {}); // the cut itself; 'close' reports it
      res.on('data', (chunk: Buffer) => {
        if (chunks.push(chunk) === 1) release();
      });
      res.on('close', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(cut.status, 200);
  t.equal(cut.complete, false);
  const line = await lineFor(mirror.logs, cut.headers['x-request-id']);
  t.match(line, { status: 200, aborted: true });
  t.ok(line?.bytes !== undefined && line.bytes >= cut.body.length && line.bytes < blob.length, `bytes ${line?.bytes}: what went out, not the blob size (client read ${cut.body.length})`);

  const whole = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
  t.equal(whole.complete, true);
  const ok = await lineFor(mirror.logs, whole.headers['x-request-id']);
  t.match(ok, { status: 200, bytes: blob.length });
  t.equal(ok?.aborted, undefined, 'a whole response carries no aborted flag');
});

t.test('a client that leaves mid-body is logged as aborted', async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob('team/app', randomLayer(8 * MiB, 'client-leaves').gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const id = await new Promise<unknown>((resolve) => {
    const req = httpRequest(`${mirror.url}/v2/team/app/blobs/${digest}`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve(res.headers['x-request-id']);
      });
    });
    req.on('error', () => {});
    req.end();
  });
  const line = await lineFor(mirror.logs, id);
  t.match(line, { status: 200, aborted: true });
  t.ok(line?.bytes !== undefined && line.bytes < 8 * MiB, `bytes ${line?.bytes}`);
});

t.test('a client that leaves before the first byte: nothing sent, logged as status 0, aborted', async (t) => {
  const reg = await startTestRegistry(t);
  const digest = reg.putBlob('team/app', randomLayer(MiB, 'leaves-early').gz);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const release = pauseNextBlobGet(reg, 0);
  const req = httpRequest(`${mirror.url}/v2/team/app/blobs/${digest}`, { agent: false });
  req.on('error', () => {});
  req.end();
  await until('the upstream GET under way', () => reg.count({ kind: 'blob', method: 'GET' }), (n) => n === 1);
  req.destroy();
  const line = await until('the access line', () => accessLines(mirror.logs).find((l) => l.route === 'blob'));
  t.match(line, { status: 0, aborted: true });
  release();
  await mirror.app.settled();
  t.ok((await request(`${mirror.url}/v2/team/app/blobs/${digest}`)).complete, 'the download went on for the next client');
});
