import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { runDoctor } from '../../src/doctor/index.js';
import { tempDir } from '../fixtures/daemons.js';
import { errorCode, request } from '../fixtures/http.js';
import { startRegmirror } from '../fixtures/regmirror-process.js';
import { buildImage, buildLayer, sha256, type Image } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { freePort } from '../fixtures/ports.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startTinyproxy } from '../fixtures/tinyproxy.js';
import { startTlsFront } from '../fixtures/tls-front.js';
import { makePki } from '../fixtures/tls.js';
import { toolsMissing } from '../fixtures/tools.js';

// A real egress proxy (Debian's tinyproxy) on loopback: what it logs is what the mirror sent through it.
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const CANARY = `proxy-secret-${Math.random().toString(36).slice(2)}`;
const tools = toolsMissing(['tinyproxy']);
if (tools.required && tools.skip) throw new Error(tools.skip);

async function pull(mirrorUrl: string, img: Image, repo = 'team/app'): Promise<{ status: number; body: string; blobOk: boolean }> {
  const manifest = await request(`${mirrorUrl}/v2/${repo}/manifests/1`, { headers: { accept: ACCEPT } });
  const layer = img.layers[0]!;
  const blob = manifest.status === 200 ? await request(`${mirrorUrl}/v2/${repo}/blobs/${layer.digest}`) : undefined;
  return { status: manifest.status, body: manifest.body.toString(), blobOk: blob?.status === 200 && sha256(blob.body) === layer.digest };
}

function image(seed: string): Image {
  return buildImage({ layers: [buildLayer({ [`${seed}.txt`]: seed })] });
}

t.test('an http upstream through upstreams.<name>.proxy: registry, token realm and blob redirect all in absolute form', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t);
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'pw', separateTokenServer: true }, redirectBlobs: true });
  const img = image('via-proxy');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'corp.test': { url: reg.url, username: 'mirror', password: 'pw', extra: { proxy: proxy.url } } } });
  const pulled = await pull(mirror.url, img);
  t.equal(pulled.status, 200);
  t.ok(pulled.blobOk, 'the blob arrives whole through the proxy');
  const seen = proxy.requests();
  for (const [what, url] of [
    ['the registry', reg.url],
    ['the token realm', reg.tokenUrl],
    ['the storage host of the redirect', reg.blobServerUrl],
  ] as const) {
    t.ok(seen.some((l) => l.startsWith(`GET ${new URL(url ?? '').origin}/`)), `${what} was asked through the proxy in absolute form`);
  }
  t.notOk(seen.some((l) => l.startsWith('CONNECT')), 'no tunnel for http targets');
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { upstreams: { proxy: string | null }[] };
  t.equal(status.upstreams[0]?.proxy, `${proxy.url}/`, '/api/status names the proxy');
});

t.test('an https upstream through HTTPS_PROXY: a CONNECT tunnel, with the private CA still checked inside it', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t);
  const pki = await makePki(t);
  const reg = await startTestRegistry(t);
  const img = image('tunnelled');
  reg.pushImage('team/app', '1', img);
  const front = await startTlsFront(t, reg.url, { server: await pki.server('registry') });
  const mirror = await startMirror(t, { upstreams: { 'secure.test': { url: front.url, extra: { ca: pki.caCert } } }, env: { HTTPS_PROXY: proxy.url } });
  const pulled = await pull(mirror.url, img);
  t.equal(pulled.status, 200);
  t.ok(pulled.blobOk);
  t.ok(proxy.requests().some((l) => l === `CONNECT 127.0.0.1:${front.port} HTTP/1.1`), 'tinyproxy logged the CONNECT to the registry');
});

t.test('NO_PROXY and proxy "none" bypass the environment proxy; others go through it', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t);
  const regs = await Promise.all([startTestRegistry(t), startTestRegistry(t), startTestRegistry(t)]);
  const img = image('bypass');
  for (const r of regs) r.pushImage('team/app', '1', img);
  const [proxied, listed, none] = regs as [(typeof regs)[0], (typeof regs)[0], (typeof regs)[0]];
  const listedHost = new URL(listed.url).host;
  const mirror = await startMirror(t, {
    upstreams: { 'proxied.test': { url: proxied.url }, 'listed.test': { url: listed.url }, 'none.test': { url: none.url, extra: { proxy: 'none' } } },
    // Lower-case wins, as curl reads it; the upper-case one here points nowhere.
    env: { http_proxy: proxy.url, HTTP_PROXY: 'http://127.0.0.1:1', no_proxy: `example.invalid, ${listedHost}` },
  });
  for (const name of ['proxied.test', 'listed.test', 'none.test']) {
    const pulled = await pull(`${mirror.url}`, img, `${name}/team/app`.replace(/^proxied\.test\//, ''));
    t.equal(pulled.status, 200, `${name} is served`);
  }
  const seen = proxy.requests();
  t.ok(seen.some((l) => l.includes(new URL(proxied.url).host)), 'the unlisted upstream went through the proxy');
  t.notOk(seen.some((l) => l.includes(listedHost)), 'the NO_PROXY host did not');
  t.notOk(seen.some((l) => l.includes(new URL(none.url).host)), 'the upstream with proxy "none" did not');
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { upstreams: { name: string; proxy: string | null }[] };
  t.same(
    status.upstreams.map((u) => [u.name, u.proxy]),
    [
      ['proxied.test', `${proxy.url}/`],
      ['listed.test', null],
      ['none.test', null],
    ],
  );
});

t.test('proxy credentials in the URL are sent to the proxy and redacted everywhere else', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t, { basicAuth: { user: 'mirror', password: CANARY } });
  const pki = await makePki(t);
  const reg = await startTestRegistry(t);
  const img = image('with-credentials');
  reg.pushImage('team/app', '1', img);
  const front = await startTlsFront(t, reg.url, { server: await pki.server('registry') });
  const withAuth = `http://mirror:${CANARY}@127.0.0.1:${proxy.port}`;
  const mirror = await startMirror(t, { upstreams: { 'secure.test': { url: front.url, extra: { ca: pki.caCert, proxy: withAuth } } } });
  const pulled = await pull(mirror.url, img);
  t.equal(pulled.status, 200, 'tinyproxy took the credentials');
  t.ok(reg.requests.every((r) => r.headers['proxy-authorization'] === undefined), 'the registry never sees Proxy-Authorization');

  const wrong = await startMirror(t, { upstreams: { 'secure.test': { url: front.url, extra: { ca: pki.caCert, proxy: `http://mirror:wrong-${CANARY}@127.0.0.1:${proxy.port}` } } } });
  const refused = await pull(wrong.url, img);
  t.equal(refused.status, 502);
  t.equal(errorCode({ status: 502, headers: {}, body: Buffer.from(refused.body), complete: true }), 'UNAVAILABLE');
  t.match(refused.body, `proxy http://127.0.0.1:${proxy.port}`, 'the answer names the proxy');
  t.match(refused.body, /wants other credentials \((401|407)\)/, 'and says its credentials were refused');

  const status = (await request(`${mirror.url}/api/status`)).body.toString();
  t.match(status, `http://[redacted]@127.0.0.1:${proxy.port}/`, '/api/status shows that credentials are set');
  for (const [where, text] of [
    ['/api/status', status],
    ['the 502 body', refused.body],
    ['the logs', [...mirror.logs, ...wrong.logs].join('\n')],
  ] as const) {
    t.notOk(text.includes(CANARY), `${where} never holds the proxy password`);
  }
});

t.test('a proxy that refuses or is not there: a 502 naming it, without its password', async (t) => {
  const reg = await startTestRegistry(t);
  const img = image('no-proxy-there');
  reg.pushImage('team/app', '1', img);
  const port = await freePort();
  const mirror = await startMirror(t, { upstreams: { 'corp.test': { url: reg.url, extra: { proxy: `http://mirror:${CANARY}@127.0.0.1:${port}` } } } });
  const res = await pull(mirror.url, img);
  t.equal(res.status, 502, 'a gateway error: the mirror cannot get out');
  t.match(res.body, `through proxy http://127.0.0.1:${port} (ECONNREFUSED)`);
  t.notOk(res.body.includes(CANARY));
  t.notOk(mirror.logs.join('\n').includes(CANARY), 'nor do the logs');
  t.ok(mirror.logs.some((l) => l.includes(`through proxy http://127.0.0.1:${port}`)), 'the log line names the proxy too');
  t.equal(reg.requests.length, 0, 'nothing reached the registry');
});

t.test('a proxy that denies the tunnel: a 502 with its answer', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t, { denyAll: true });
  const reg = await startTestRegistry(t);
  const front = await startTlsFront(t, reg.url, { server: await (await makePki(t)).server('registry') });
  const mirror = await startMirror(t, { upstreams: { 'secure.test': { url: front.url, extra: { insecureSkipVerify: true, proxy: proxy.url } } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  t.equal(res.status, 502);
  t.match(res.body.toString(), `proxy ${proxy.url} refused the connection (403)`);
});

t.test('`regmirror serve` reads HTTP_PROXY/NO_PROXY from its own environment', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t);
  const reg = await startTestRegistry(t);
  const img = image('child-process');
  reg.pushImage('team/app', '1', img);
  const dir = tempDir(t, 'rm-proxy-serve-');
  const file = path.join(dir, 'mirror.config.json');
  writeFileSync(file, JSON.stringify({ storage: { path: 'data', maxSize: '1GiB' }, upstreams: { 'corp.test': { url: reg.url } } }));
  // The test's own environment may carry proxy variables: these replace every spelling of them.
  const env = { ...process.env, HTTP_PROXY: proxy.url, http_proxy: proxy.url, HTTPS_PROXY: '', https_proxy: '', NO_PROXY: 'example.invalid', no_proxy: 'example.invalid' };
  const serve = startRegmirror(t, ['serve', '--config', file, '--listen', '127.0.0.1:0'], env);
  const listening = await serve.waitForLine(/"msg":"regmirror listening".*"address":"([\d.]+:\d+)"|"address":"([\d.]+:\d+)".*"msg":"regmirror listening"/, 60_000);
  const pulled = await pull(`http://${listening[1] ?? listening[2] ?? ''}`, img);
  t.equal(pulled.status, 200);
  t.ok(pulled.blobOk);
  t.ok(proxy.requests().some((l) => l.startsWith(`GET ${reg.url}/v2/team/app/manifests/1`)), 'the manifest went through the proxy');
  t.match(listening[0], `"fromEnvironment":"${proxy.url}/"`, 'the start-up line says which proxy the environment gave');
});

t.test('doctor probes through the proxy, and names a dead one without its password', { skip: tools.skip }, async (t) => {
  const proxy = await startTinyproxy(t);
  const reg = await startTestRegistry(t);
  const dead = await freePort();
  const dir = t.testdir({});
  const config = parseConfig(
    {
      storage: { path: 'cache' },
      upstreams: { 'ok.test': { url: reg.url, proxy: proxy.url }, 'dead.test': { url: reg.url, proxy: `http://u:${CANARY}@127.0.0.1:${dead}` } },
      defaultUpstream: 'ok.test',
    },
    { baseDir: dir, env: {} },
  );
  const lines = await runDoctor(config, { isPinned: () => false, user: () => 'mirror' });
  const text = lines.map((l) => `${l.level} ${l.what}`).join('\n');
  t.match(text, /ok upstream ok\.test: registry at/);
  t.ok(proxy.requests().some((l) => l === `GET ${reg.url}/v2/ HTTP/1.1`), 'the probe went through the proxy');
  t.match(text, `FAIL upstream dead.test: ECONNREFUSED connecting to ${reg.url}/v2/ through proxy http://127.0.0.1:${dead}`);
  t.notOk(text.includes(CANARY), 'no line holds the proxy password');
});
