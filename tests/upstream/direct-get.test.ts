import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as createTlsServer } from 'node:tls';
import type { Readable } from 'node:stream';
import { slabs } from '../../src/buffers/index.js';
import { DirectGets, type DirectGetSettings } from '../../src/upstream/direct-get.js';
import { parseDigest, parseRepositoryName } from '../../src/oci/index.js';
import { quickImage } from '../fixtures/images.js';
import { until } from '../fixtures/poll.js';
import { freePort } from '../fixtures/ports.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startTinyproxy } from '../fixtures/tinyproxy.js';
import { makePki } from '../fixtures/tls.js';
import { testUpstream } from '../fixtures/upstream.js';

const settings: DirectGetSettings = { tls: {}, connectMs: 5_000, headersMs: 5_000, bodyIdleMs: 5_000, connections: 4 };

/** A TCP server that runs `script` on each connection with the request head it read. */
async function scripted(t: Test, script: (socket: Socket, head: string) => unknown, make: (l: (s: Socket) => void) => Server = createServer): Promise<URL> {
  const server = make((socket) => {
    socket.on('error', () => {});
    let got = '';
    const onData = (c: Buffer): void => {
      got += c.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      void script(socket, got);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  t.teardown(() => (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.());
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/a/blobs/x?y=1`);
}

/** Writes `parts` one by one, each in its own packet, so the client sees them as separate reads. */
async function trickle(socket: Socket, parts: (string | Buffer)[]): Promise<void> {
  for (const part of parts) {
    socket.write(part);
    await sleep(5);
  }
}

async function drain(body: Readable): Promise<{ bytes: Buffer; chunks: Buffer[] }> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return { bytes: Buffer.concat(chunks), chunks };
}

function client(t: Test, s: DirectGetSettings = settings): DirectGets {
  const gets = new DirectGets(s);
  t.teardown(() => gets.destroy());
  return gets;
}

t.test('a Content-Length body arrives whole, as pooled views a writer takes over without a copy', async (t) => {
  const blob = randomBytes(5 * 1024 * 1024 + 123);
  let head = '';
  const url = await scripted(t, (socket, h) => {
    head = h;
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\nDocker-Content-Digest: x\r\nX-Twice: a\r\nX-Twice: b\r\n\r\n`);
    socket.end(blob);
  });
  const res = await client(t).get(url, { 'user-agent': 'regmirror', range: 'bytes=0-' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-length'], String(blob.length));
  t.same(res.headers['x-twice'], ['a', 'b'], 'repeated headers as an array, as undici gives them');
  const { bytes, chunks } = await drain(res.body);
  t.ok(bytes.equals(blob), 'every byte, in order');
  t.ok(chunks.every((c) => slabs.adopt(c) === c), 'each chunk is a held slab view');
  for (const c of chunks) slabs.release(c);
  t.match(head, /^GET \/v2\/a\/blobs\/x\?y=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nuser-agent: regmirror\r\nrange: bytes=0-\r\nconnection: close\r\n\r\n$/);
});

t.test('a head split across reads, after an interim 103, and the body in the same read as the head', async (t) => {
  const url = await scripted(t, (socket) =>
    trickle(socket, ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 2', '00 OK\r\nContent-Le', 'ngth: 11\r', '\n\r\nhello', ' world', 'ignored after the length']),
  );
  const res = await client(t).get(url, {});
  t.equal(res.statusCode, 200);
  t.equal((await drain(res.body)).bytes.toString(), 'hello world');
});

t.test('chunked bodies, with the framing split anywhere, extensions and trailers', async (t) => {
  const payload = 'The quick brown fox jumps over the lazy dog';
  const wire = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nThe q\r\n19\r\nuick brown fox jumps over\r\n0000D\r\n the lazy dog\r\n0\r\nX-Trailer: y\r\n\r\n`;
  // Every split point of the framing: one byte at a time.
  const url = await scripted(t, (socket) => trickle(socket, [...wire]).then(() => socket.end()));
  const res = await client(t).get(url, {});
  t.equal((await drain(res.body)).bytes.toString(), payload);
  const whole = await scripted(t, (socket) => socket.end(wire));
  t.equal((await drain((await client(t).get(whole, {})).body)).bytes.toString(), payload, 'and all in one read');
});

t.test('a body without a length ends with the connection', async (t) => {
  const url = await scripted(t, (socket) => trickle(socket, ['HTTP/1.1 200 OK\r\n\r\nabc', 'def']).then(() => socket.end()));
  t.equal((await drain((await client(t).get(url, {})).body)).bytes.toString(), 'abcdef');
});

t.test('no body for 204 and 304', async (t) => {
  const url = await scripted(t, (socket) => socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n'));
  const res = await client(t).get(url, {});
  t.equal(res.statusCode, 204);
  t.equal((await drain(res.body)).bytes.length, 0);
});

t.test('a connection closed early is a socket failure, never a short body that looks whole', async (t) => {
  const url = await scripted(t, (socket) => trickle(socket, ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', 'only part']).then(() => socket.end()));
  const res = await client(t).get(url, {});
  await t.rejects(drain(res.body), { code: 'UND_ERR_SOCKET' });

  const chunked = await scripted(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc'));
  await t.rejects(drain((await client(t).get(chunked, {})).body), { code: 'UND_ERR_SOCKET' }, 'a chunked body cut off');

  const silent = await scripted(t, (socket) => void socket.end());
  await t.rejects(client(t).get(silent, {}), { code: 'UND_ERR_SOCKET', socket: { bytesRead: 0 } }, 'closed before answering: nothing read');
});

t.test('malformed answers are refused', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', /not HTTP\/1\.x/],
    ['a folded header', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n', /malformed header/],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n', /malformed header/],
    ['two lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /Content-Length/],
    ['a length that is no number', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /Content-Length/],
  ];
  for (const [what, answer, message] of cases) {
    const url = await scripted(t, (socket) => socket.end(answer));
    await t.rejects(client(t).get(url, {}), { code: 'HPE_INVALID_RESPONSE', message }, what);
  }
  const huge = await scripted(t, (socket) => socket.end(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`));
  await t.rejects(client(t).get(huge, {}), { code: 'HPE_INVALID_RESPONSE', message: /head over/ }, 'a head without end');
  const badChunk = await scripted(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
  await t.rejects(drain((await client(t).get(badChunk, {})).body), { code: 'HPE_INVALID_CHUNK_SIZE' });
  const longChunk = await scripted(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n'));
  await t.rejects(drain((await client(t).get(longChunk, {})).body), { message: /longer than its size/ });
});

t.test('a header value with a line break is never sent', async (t) => {
  let asked = false;
  const url = await scripted(t, () => void (asked = true));
  await t.rejects(client(t).get(url, { authorization: 'Bearer x\r\nX-Evil: 1' }), { code: 'UND_ERR_INVALID_ARG' });
  t.notOk(asked);
});

t.test('timeouts: no head, and a body that stops, but not a consumer that reads slowly', async (t) => {
  const quick = { ...settings, headersMs: 150, bodyIdleMs: 150 };
  const mute = await scripted(t, () => {});
  await t.rejects(client(t, quick).get(mute, {}), { code: 'UND_ERR_HEADERS_TIMEOUT' });

  const stalls = await scripted(t, (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
  await t.rejects(drain((await client(t, quick).get(stalls, {})).body), { code: 'UND_ERR_BODY_TIMEOUT' });

  // The upstream is done sending what fits; the consumer takes 3 × the idle timeout to start reading.
  const blob = randomBytes(8 * 1024 * 1024);
  const full = await scripted(t, (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`);
    socket.end(blob);
  });
  const res = await client(t, quick).get(full, {});
  await until('the body to stop reading', () => res.body.readableLength, (n) => n >= 4);
  await sleep(450);
  t.ok(res.body.readableLength <= 5, `reading stopped at the high-water mark (${res.body.readableLength} chunks held)`);
  t.ok((await drain(res.body)).bytes.equals(blob), 'then every byte, after the pause');
});

t.test('an abort ends the GET with its reason, before the head and during the body', async (t) => {
  const mute = await scripted(t, () => {});
  const early = new AbortController();
  const pending = client(t).get(mute, {}, early.signal);
  early.abort(new Error('client left'));
  await t.rejects(pending, { message: 'client left' });
  await t.rejects(client(t).get(mute, {}, early.signal), { message: 'client left' }, 'already aborted: no connection');

  let closed: Promise<void> | undefined;
  const slow = await scripted(t, (socket) => {
    closed = new Promise((r) => socket.on('close', () => r()));
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
  });
  const late = new AbortController();
  const res = await client(t).get(slow, {}, late.signal);
  late.abort(new Error('gone'));
  await t.rejects(drain(res.body), { message: 'gone' });
  await closed;
  t.pass('the upstream connection was closed');
});

t.test('destroy() ends every GET in flight, those waiting for their turn, and those asked later', async (t) => {
  let reached = 0;
  const mute = await scripted(t, () => void reached++);
  const gets = client(t, { ...settings, connections: 1 });
  const running = gets.get(mute, {});
  const waiting = gets.get(mute, {});
  await until('the first GET to reach the server', () => reached === 1);
  gets.destroy();
  await t.rejects(running, { code: 'UND_ERR_DESTROYED' });
  await t.rejects(waiting, { code: 'UND_ERR_DESTROYED' });
  await t.rejects(gets.get(mute, {}), { code: 'UND_ERR_DESTROYED' });
  t.equal(reached, 1, 'the waiting GET never connected');
});

t.test('at most `connections` GETs open at once per origin; the others wait their turn', async (t) => {
  let open = 0;
  let peak = 0;
  const answers: (() => void)[] = [];
  const url = await scripted(t, (socket) => {
    open++;
    peak = Math.max(peak, open);
    socket.on('close', () => open--);
    answers.push(() => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  });
  const gets = client(t, { ...settings, connections: 2 });
  const pending = Array.from({ length: 5 }, () => gets.get(url, {}).then((res) => drain(res.body)));
  for (let answered = 0; answered < 5; answered++) {
    await until('a GET to reach the server', () => answers.length);
    answers.shift()!();
  }
  t.same((await Promise.all(pending)).map((r) => r.bytes.toString()), ['ok', 'ok', 'ok', 'ok', 'ok']);
  t.equal(peak, 2, 'never more than 2 connections at once');
});

t.test('a refused connection keeps its code, for the retry rule', async (t) => {
  const gone = new URL(`http://127.0.0.1:${await freePort()}/`);
  await t.rejects(client(t).get(gone, {}), { code: 'ECONNREFUSED' });
});

t.test('https: the same bytes through TLS, with the CA given; an untrusted certificate is refused', async (t) => {
  const pki = await makePki(t);
  const pair = await pki.server('upstream', ['registry.test']);
  const blob = randomBytes(3 * 1024 * 1024 + 7);
  const tlsOptions = { key: readFileSync(pair.key), cert: readFileSync(pair.cert) };
  const url = await scripted(
    t,
    (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`);
      socket.end(blob);
    },
    (listener) => createTlsServer(tlsOptions, listener),
  );
  url.protocol = 'https:';
  const ca = readFileSync(pki.caCert, 'utf8');
  const res = await client(t, { ...settings, tls: { ca: [ca] } }).get(url, {});
  const { bytes, chunks } = await drain(res.body);
  t.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(blob).digest('hex'));
  // TLS hands over one 16 KiB record a read: the records of one loop turn go on as one view.
  t.ok(chunks.length < blob.length / (16 * 1024), `records joined: ${chunks.length} chunks for ${Math.ceil(blob.length / 16384)} records`);
  await t.rejects(client(t).get(url, {}), { code: /UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER/ });
});

t.test('an upstream reads blob bodies straight into slabs, through its auth and a redirect; through a proxy it does not', async (t) => {
  const registry = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'pw' }, redirectBlobs: true });
  const image = quickImage('direct-get');
  registry.pushImage('team/app', '1', image);
  const layer = image.layers[0]!;
  const direct = testUpstream(t, registry.url, { username: 'mirror', password: 'pw' }).up;
  const res = await direct.getBlob(parseRepositoryName('team/app'), parseDigest(layer.digest));
  const { bytes, chunks } = await drain(res.body);
  t.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest);
  t.ok(chunks.length > 0 && chunks.every((c) => slabs.adopt(c) === c), 'held slab views');

  const proxy = await startTinyproxy(t);
  const proxied = testUpstream(t, registry.url, { username: 'mirror', password: 'pw', proxy: { source: 'config', http: new URL(proxy.url), https: undefined, noProxy: [] } }).up;
  const viaProxy = await drain((await proxied.getBlob(parseRepositoryName('team/app'), parseDigest(layer.digest))).body);
  t.ok(viaProxy.bytes.equals(bytes), 'the same bytes through the proxy');
  t.ok(viaProxy.chunks.every((c) => slabs.adopt(c) !== c), 'read by undici, which speaks the proxy protocol');
  t.ok(proxy.requests().some((l) => l.startsWith('GET ') && l.includes('/blobs/')), 'the blob GET went through the proxy');
});

t.test('TLS options the socket refuses at once fail the GET, and free its slot', async (t) => {
  const url = await scripted(t, () => {});
  url.protocol = 'https:';
  const gets = client(t, { ...settings, connections: 1, tls: { cert: 'not a certificate', key: 'not a key' } });
  await t.rejects(gets.get(url, {}), Error);
  await t.rejects(gets.get(url, {}), Error, 'the next one gets its turn and fails the same way');
});
