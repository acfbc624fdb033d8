import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { randomLayer } from '../fixtures/images.js';
import { startTestRegistry, type RecordedRequest, type TestRegistry } from '../fixtures/test-registry.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Polls a condition the fixture sets asynchronously; bounded in count and time. */
async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function setup(t: Test, size = 200_000): Promise<{ reg: TestRegistry; blob: Buffer; url: string; digest: string }> {
  const reg = await startTestRegistry(t);
  const blob = randomLayer(size, 'faults').gz;
  const digest = reg.putBlob('f/g', blob);
  return { reg, blob, digest, url: `${reg.url}/v2/f/g/blobs/${digest}` };
}

/** Reads a fetch body chunk by chunk. */
async function readChunks(res: Response): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  const reader = res.body?.getReader();
  for (;;) {
    const { done, value } = (await reader?.read()) ?? { done: true, value: undefined };
    if (done) return chunks;
    chunks.push(Buffer.from(value));
  }
}

const last = (reg: TestRegistry): RecordedRequest | undefined => reg.requests.at(-1);

t.test('status with Retry-After, times, remover', async (t) => {
  const { reg, url } = await setup(t);
  reg.inject({ match: { kind: 'blob' }, type: 'status', status: 429, retryAfter: 7, times: 1 });
  const limited = await fetch(url);
  t.equal(limited.status, 429);
  t.equal(limited.headers.get('retry-after'), '7');
  t.match(await limited.json(), { errors: [{ code: 'TOOMANYREQUESTS' }] });
  const ok = await fetch(url);
  t.equal(ok.status, 200, 'times: 1 is used up');
  await ok.arrayBuffer();

  const remove = reg.inject({ match: { kind: 'manifest', method: 'GET' }, type: 'status', status: 503 });
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${reg.url}/v2/f/g/manifests/x`);
    t.equal(res.status, 503);
    t.match(await res.json(), { errors: [{ code: 'UNAVAILABLE' }] });
  }
  remove();
  const after = await fetch(`${reg.url}/v2/f/g/manifests/x`);
  t.equal(after.status, 404);
  await after.arrayBuffer();
  reg.inject({ match: { pathIncludes: '/v2/' }, type: 'status', status: 500, body: 'plain failure' });
  const plain = await fetch(`${reg.url}/v2/`);
  t.equal(plain.status, 500);
  t.equal(await plain.text(), 'plain failure');
  t.equal(last(reg)?.status, 500);
});

t.test('drop-after: full Content-Length, then a cut', async (t) => {
  const { reg, url, blob } = await setup(t);
  reg.inject({ match: { kind: 'blob' }, type: 'drop-after', bytes: 1000, times: 1 });
  const res = await fetch(url);
  t.equal(res.headers.get('content-length'), String(blob.length));
  await t.rejects(res.arrayBuffer());
  await waitFor('the response to end', () => reg.requests.length === 1 && !reg.requests[0]?.completed && reg.requests[0]?.bytesSent === 1000);
  const zero = await startTestRegistry(t);
  const digest = zero.putBlob('f/g', blob);
  zero.inject({ match: { kind: 'blob' }, type: 'drop-after', bytes: 0 });
  const headersOnly = await fetch(`${zero.url}/v2/f/g/blobs/${digest}`);
  t.equal(headersOnly.status, 200);
  await t.rejects(headersOnly.arrayBuffer());
});

t.test('wrong-bytes: same length, wrong digest, right header', async (t) => {
  const { reg, url, blob, digest } = await setup(t);
  for (const at of ['all', 'middle', 'last'] as const) {
    reg.inject({ match: { kind: 'blob' }, type: 'wrong-bytes', at, times: 1 });
    const res = await fetch(url);
    t.equal(res.headers.get('docker-content-digest'), digest);
    const body = Buffer.from(await res.arrayBuffer());
    t.equal(body.length, blob.length);
    t.not(sha(body), digest);
    if (at === 'last') t.ok(body.subarray(0, -1).equals(blob.subarray(0, -1)), 'only the last byte differs');
    if (at === 'middle') t.same([...body.keys()].filter((i) => body[i] !== blob[i]), [blob.length >> 1], 'only the middle byte differs');
  }
  t.equal(sha(Buffer.from(await (await fetch(url)).arrayBuffer())), digest);
});

t.test('delay, then a normal answer', async (t) => {
  const { reg, url, digest } = await setup(t);
  reg.inject({ match: { kind: 'blob' }, type: 'delay', ms: 150, times: 1 });
  const pending = fetch(url);
  await waitFor('the request to be recorded', () => reg.requests.length === 1);
  t.equal(reg.requests[0]?.status, 0, 'recorded before it is answered');
  const res = await pending;
  t.equal(sha(Buffer.from(await res.arrayBuffer())), digest);
  t.equal(reg.requests[0]?.status, 200);
});

t.test('throttle: the body arrives in several pieces', async (t) => {
  const { reg, url, blob } = await setup(t, 3000);
  reg.inject({ match: { kind: 'blob' }, type: 'throttle', bytesPerSecond: 20_000 });
  const chunks = await readChunks(await fetch(url));
  t.ok(chunks.length >= 2, `got ${chunks.length} pieces`);
  t.ok(Buffer.concat(chunks).equals(blob));
});

t.test('pause-after: bytes before the pause arrive while the rest waits', async (t) => {
  const { reg, url, blob } = await setup(t);
  let release = (): void => {};
  reg.inject({ match: { kind: 'blob' }, type: 'pause-after', bytes: 5000, release: new Promise<void>((r) => (release = r)) });
  const res = await fetch(url);
  const reader = res.body?.getReader();
  if (reader === undefined) throw new Error('no body');
  const got: Buffer[] = [];
  while (Buffer.concat(got).length < 5000) {
    const { value, done } = await reader.read();
    if (done) break;
    got.push(Buffer.from(value));
  }
  t.equal(Buffer.concat(got).length, 5000, 'exactly the bytes before the pause');
  t.equal(last(reg)?.completed, false);
  release();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    got.push(Buffer.from(value));
  }
  t.ok(Buffer.concat(got).equals(blob));
});

t.test('hang: no answer until the registry stops', async (t) => {
  const { reg, url } = await setup(t);
  reg.inject({ match: { kind: 'blob' }, type: 'hang' });
  const pending = fetch(url);
  await waitFor('the request to be recorded', () => reg.requests.length === 1);
  const outcome = pending.then(() => 'answered', () => 'failed');
  await sleep(50);
  t.equal(last(reg)?.status, 0);
  await reg.stop();
  t.equal(await outcome, 'failed');
});

t.test('reset: the connection drops with no answer', async (t) => {
  const { reg, url } = await setup(t);
  reg.inject({ match: { kind: 'blob' }, type: 'reset', times: 1 });
  await t.rejects(fetch(url));
  t.equal(last(reg)?.status, 0);
  t.equal((await fetch(url)).status, 200);
});

t.test('chunked and no-head-length', async (t) => {
  const { reg, blob, digest } = await setup(t);
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'chunked', times: 1 });
  reg.inject({ match: { kind: 'blob', method: 'HEAD' }, type: 'no-head-length', times: 1 });
  // node:http shows the raw framing (fetch hides transfer-encoding).
  const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    request(`${reg.url}/v2/f/g/blobs/${digest}`, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) }));
    }).on('error', reject).end();
  });
  t.equal(raw.headers['transfer-encoding'], 'chunked');
  t.equal(raw.headers['content-length'], undefined);
  t.ok(raw.body.equals(blob));
  const head = await fetch(`${reg.url}/v2/f/g/blobs/${digest}`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('content-length'), null);
  t.equal(head.headers.get('docker-content-digest'), digest);
  const again = await fetch(`${reg.url}/v2/f/g/blobs/${digest}`, { method: 'HEAD' });
  t.equal(again.headers.get('content-length'), String(blob.length));
});

t.test('body faults skip the 307 and hit the blob server', async (t) => {
  const reg = await startTestRegistry(t, { redirectBlobs: true });
  const blob = randomLayer(10_000, 'redirect-fault').gz;
  const digest = reg.putBlob('f/g', blob);
  reg.inject({ match: { kind: 'blob' }, type: 'wrong-bytes', times: 1 });
  const body = Buffer.from(await (await fetch(`${reg.url}/v2/f/g/blobs/${digest}`)).arrayBuffer());
  t.equal(body.length, blob.length);
  t.not(sha(body), digest);
  t.same(reg.requests.map((r) => [r.server, r.status]), [['registry', 307], ['blobs', 200]]);
});
