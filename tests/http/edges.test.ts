import t from 'tap';
import { pino } from 'pino';
import type { AddressInfo } from 'node:net';
import { createHttpServer } from '../../src/http/index.js';
import type { RegistryReader } from '../../src/mirror/index.js';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { rawExchange, type RawExchange } from '../fixtures/raw-http.js';

// What Node's HTTP parser rejects never reaches a handler: it still gets a status and an OCI error
// body (where the connection allows one), never an empty 400 or a silent close.

function ociCode(res: RawExchange): string | undefined {
  try {
    return (JSON.parse(res.body) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

const REJECTED: ReadonlyArray<readonly [string, string | Buffer, number]> = [
  ['a NUL in the path', Buffer.from('GET /v2/team/a\u0000b/manifests/1 HTTP/1.1\r\nHost: m\r\n\r\n', 'latin1'), 400],
  ['raw non-ASCII in the path', Buffer.concat([Buffer.from('GET /v2/team/'), Buffer.from('é', 'utf8'), Buffer.from('/manifests/1 HTTP/1.1\r\nHost: m\r\n\r\n')]), 400],
  ['a bad method token', 'G@T /v2/ HTTP/1.1\r\nHost: m\r\n\r\n', 400],
  ['HTTP/1.2', 'GET /v2/ HTTP/1.2\r\nHost: m\r\n\r\n', 400],
  ['Content-Length with Transfer-Encoding (smuggling)', 'POST /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['a control character in a header value', 'GET /v2/ HTTP/1.1\r\nHost: m\r\nX-A: a\u0001b\r\n\r\n', 400],
  ['oversized headers', `GET /v2/ HTTP/1.1\r\nHost: m\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
];

t.test('requests the parser rejects get a status and an OCI error body', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  for (const [what, bytes, status] of REJECTED) {
    const res = await rawExchange(mirror.host, bytes);
    t.equal(res.status, status, `${what}: ${status} (${JSON.stringify(res.raw.slice(0, 80))})`);
    t.equal(res.headers['content-type'], 'application/json', `${what}: a JSON body`);
    t.equal(ociCode(res), 'UNSUPPORTED', `${what}: an OCI error`);
    t.equal(res.headers['connection'], 'close');
  }
  t.equal((await request(`${mirror.url}/v2/`)).status, 200, 'the mirror serves on');
  t.equal(reg.requests.length, 0, 'nothing reached upstream');
});

t.test('CONNECT gets 405 with an OCI error, not a silent close', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const res = await rawExchange(mirror.host, `CONNECT ${reg.host} HTTP/1.1\r\nHost: ${reg.host}\r\n\r\n`);
  t.equal(res.status, 405);
  t.equal(res.headers['allow'], 'GET, HEAD');
  t.equal(ociCode(res), 'UNSUPPORTED');
  t.equal(reg.requests.length, 0, 'not an open proxy');
});

t.test('a TLS handshake on the plain port still gets its quiet empty 400', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const hello = Buffer.from('16030100c8010000c40303', 'hex');
  const res = await rawExchange(mirror.host, hello);
  t.equal(res.status, 400);
  t.equal(res.headers['content-length'], '0');
  t.equal(res.body, '');
  t.notOk(mirror.logs.some((l) => /"level":"(warn|error)"/.test(l)), 'and no log line per handshake');
});

t.test('a bad request pipelined after a good one: the first answer comes whole, then the 400', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('pipelined');
  reg.pushImage('team/app', '1', image);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  // The first answer is still being worked on (upstream is slow) when the second request fails to parse.
  reg.inject({ match: { kind: 'manifest' }, type: 'delay', ms: 300, times: 1 });
  const get = `GET /v2/team/app/manifests/1 HTTP/1.1\r\nHost: m\r\nAccept: ${image.mediaType}\r\n\r\n`;
  const res = await rawExchange(mirror.host, `${get}G@T /v2/ HTTP/1.1\r\nHost: m\r\n\r\n`);
  t.equal(res.status, 200);
  t.equal(res.body, image.manifest.toString('latin1'), 'the manifest, whole');
  t.match(res.raw.slice(res.raw.indexOf(res.body) + res.body.length), /^HTTP\/1\.1 400 Bad Request\r\n/, 'then the 400 for the second');
});

t.test('headers that do not arrive within the header timeout get 408 with an OCI error', async (t) => {
  // Unreachable here: the request never completes its headers.
  const reader = {} as RegistryReader;
  const server = createHttpServer({ reader, routes: { upstreams: new Map(), aliases: new Map(), defaultUpstream: 'x' }, logger: pino({ level: 'silent' }), headersTimeoutMs: 300 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const res = await rawExchange(`127.0.0.1:${port}`, 'GET /v2/ HTTP/1.1\r\nHost: m\r\nX-Slow: ');
  t.equal(res.status, 408);
  t.equal(ociCode(res), 'UNSUPPORTED');
  t.match(res.body, /did not arrive in time/);
});
