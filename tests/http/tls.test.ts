import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { connect } from 'node:tls';
import { allowAll, type AccessController, type AccessRequest } from '../../src/access/index.js';
import { ConfigError } from '../../src/config/index.js';
import { sha256 } from '../fixtures/images.js';
import { quickImage } from '../fixtures/images.js';
import { request } from '../fixtures/http.js';
import { buildMirror, startMirror, type StartMirrorOptions } from '../fixtures/mirror.js';
import { until } from '../fixtures/poll.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { certFiles, fingerprint, httpsGet, makePki, type CertFiles, type KeyPair, type Pki } from '../fixtures/tls.js';

// The registry API over HTTPS: served certificates rotate without a restart, a verified client
// certificate names its holder, and `tls.listen` adds HTTPS beside a plain `listen`.

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function world(t: Test, files: (pki: Pki, first: KeyPair) => Promise<Pick<CertFiles, 'cert' | 'key'>> | Pick<CertFiles, 'cert' | 'key'>, extra: Partial<StartMirrorOptions> = {}) {
  const pki = await makePki(t);
  const first = await pki.server('first');
  const reg = await startTestRegistry(t);
  const img = quickImage('tls');
  reg.pushImage('library/alpine', '3', img);
  const { cert, key } = await files(pki, first);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, library: true } }, tls: { cert, key }, tlsCheckIntervalMs: 60_000, ...extra });
  return { pki, first, img, mirror };
}

/** The JSON log lines with message `msg`. */
function logged(logs: readonly string[], msg: RegExp): Array<Record<string, unknown>> {
  return logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => msg.test(String(l['msg'])));
}

t.test('the main listener serves the registry API over HTTPS, TLS 1.2 and up', async (t) => {
  const { pki, first, img, mirror } = await world(t, (_pki, first) => first);
  t.match(mirror.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.equal(mirror.app.tlsAddress()?.port, Number(mirror.host.split(':')[1]), 'tlsAddress() is the main listener');

  const manifest = await httpsGet(`${mirror.url}/v2/alpine/manifests/3`, { ca: pki.caCert });
  t.equal(manifest.status, 200);
  t.equal(sha256(manifest.body), img.manifestDigest, 'the upstream manifest');
  t.equal(manifest.fingerprint, fingerprint(first.cert), 'served with the configured certificate');
  const layer = img.layers[0]!;
  t.equal(sha256((await httpsGet(`${mirror.url}/v2/library/alpine/blobs/${layer.digest}`, { ca: pki.caCert })).body), layer.digest, 'a blob');

  const started = logged(mirror.logs, /^regmirror listening$/)[0];
  t.match(started, { protocol: 'https', certificate: { fingerprint: fingerprint(first.cert), subject: 'CN=first' } }, 'the start line says the listener is https');

  // SECLEVEL=0: this client would speak TLS 1.1 if the server let it.
  const port = Number(mirror.host.split(':')[1]);
  const old = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(pki.caCert), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
      resolve(`connected with ${String(socket.getProtocol())}`);
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  t.equal(old, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'TLS 1.1 is refused');

  await t.rejects(httpsGet(`${mirror.url}/v2/`, { ca: (await makePki(t, 'another CA')).caCert }), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'a client trusting another CA refuses the mirror');
});

for (const layout of ['plain', 'secret'] as const) {
  const how = layout === 'plain' ? 'overwritten in place' : "swapped like a Secret volume (..data symlink)";
  t.test(`certificate files ${how}: new connections get the new one, open ones stay`, async (t) => {
    let files: CertFiles | undefined;
    const { pki, first, mirror } = await world(t, (_pki, first) => (files = certFiles(t, first, layout)));
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(pki.caCert) });
    t.teardown(() => agent.destroy());
    const before = await httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert, agent });
    t.equal(before.fingerprint, fingerprint(first.cert));

    const second = await pki.server('second');
    if (layout === 'plain') files!.overwrite(second);
    else files!.swap(second);
    // Watching the directory is what notices: the periodic check is a minute away.
    await until('a new connection served the new certificate', () => httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert }), (r) => r.fingerprint === fingerprint(second.cert));

    const kept = await httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert, agent });
    t.ok(kept.reusedSocket, 'the connection opened before the rotation was kept');
    t.equal(kept.status, 200, 'and still serves');
    t.equal(kept.fingerprint, fingerprint(first.cert), 'with the certificate it was opened with');
    t.match(logged(mirror.logs, /^TLS certificate reloaded/), [{ level: 'info', fingerprint: fingerprint(second.cert), previousFingerprint: fingerprint(first.cert), subject: 'CN=second' }], 'one info line');
  });
}

t.test('files that cannot serve keep the previous certificate, with a warning', async (t) => {
  let files: CertFiles | undefined;
  // Swapped atomically, so each step is one state of the files; the periodic check sees every one.
  const { pki, first, mirror } = await world(t, (_pki, first) => (files = certFiles(t, first, 'secret')), { tlsCheckIntervalMs: 50 });
  const second = await pki.server('second');
  const warnings = () => logged(mirror.logs, /cannot serve/);
  const steps: Array<[string, () => void]> = [
    ['a key from another renewal', () => files!.swapRaw(readFileSync(second.cert), readFileSync(first.key))],
    ['a half-written certificate', () => files!.swapRaw(readFileSync(second.cert).subarray(0, 200), readFileSync(second.key))],
    ['an empty key', () => files!.swapRaw(readFileSync(second.cert), '')],
  ];
  for (const [label, step] of steps) {
    const seen = warnings().length;
    step();
    const [warning] = (await until(`a warning for ${label}`, warnings, (w) => w.length > seen)).slice(seen);
    t.match(warning, { level: 'warn', fingerprint: fingerprint(first.cert), error: { type: 'ConfigError' } }, `${label}: warned`);
    t.equal((await httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert })).fingerprint, fingerprint(first.cert), `${label}: the old certificate is served`);
  }
  t.match(warnings()[0], { error: { message: /^tls\.key: .* is not the private key of the certificate/ } });
  t.equal(warnings().length, steps.length, 'each bad state is reported once, not at every check');

  files!.swap(second);
  await until('the good pair is served', () => httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert }), (r) => r.fingerprint === fingerprint(second.cert));
});

t.test('unusable files at start-up fail the start with a ConfigError naming the key', async (t) => {
  const pki = await makePki(t);
  const [a, b] = await Promise.all([pki.server('a'), pki.server('b')]);
  const cases: Array<[string, { cert: string; key: string; clientCA?: string }, RegExp]> = [
    ['missing certificate', { cert: `${a.cert}.missing`, key: a.key }, /^tls\.cert: cannot read .*: ENOENT/],
    ['mismatched key', { cert: a.cert, key: b.key }, /^tls\.key: /],
    ['not a certificate', { cert: a.key, key: a.key }, /^tls\.cert: .* holds no PEM certificate/],
    ['not a CA bundle', { cert: a.cert, key: a.key, clientCA: a.key }, /^tls\.clientCA: /],
  ];
  const reg = await startTestRegistry(t);
  for (const [label, tls, message] of cases) {
    const mirror = buildMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, tls });
    const err = await mirror.start().catch((e: unknown) => e);
    t.ok(err instanceof ConfigError, `${label}: a ConfigError`);
    t.match((err as Error).message, message, label);
  }
});

t.test('tls.clientCA: a verified client certificate names its holder to the access controller', async (t) => {
  const pki = await makePki(t);
  const stranger = await makePki(t, 'someone else');
  const [server, node, forged] = await Promise.all([pki.server('mirror'), pki.client('node-17.ci'), stranger.client('admin')]);
  const seen: AccessRequest[] = [];
  const access: AccessController = {
    ...allowAll,
    authorize: async (req) => {
      seen.push(req);
      return { principal: req.clientCertificate ?? 'anonymous' };
    },
  };
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, access, tls: { cert: server.cert, key: server.key, clientCA: pki.caCert } });
  const ask = async (client?: KeyPair) => {
    seen.length = 0;
    const res = await httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert, ...(client ? { client } : {}) });
    t.equal(res.status, 200, 'an optional certificate: the handshake never refuses');
    return seen[0];
  };
  t.match(await ask(node), { clientCertificate: 'node-17.ci', remoteAddress: '127.0.0.1' }, 'the CN of a certificate the CA issued');
  t.match(await ask(forged), { clientCertificate: undefined, remoteAddress: '127.0.0.1' }, 'another CA: no identity');
  t.match(await ask(), { clientCertificate: undefined }, 'no certificate: no identity');
});

t.test('without clientCA no certificate is asked for and none names anyone', async (t) => {
  const pki = await makePki(t);
  const [server, node] = await Promise.all([pki.server('mirror'), pki.client('node')]);
  const seen: AccessRequest[] = [];
  const access: AccessController = { ...allowAll, authorize: async (req) => (seen.push(req), { principal: 'anonymous' }) };
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, access, tls: { cert: server.cert, key: server.key } });
  t.equal((await httpsGet(`${mirror.url}/v2/`, { ca: pki.caCert, client: node })).status, 200);
  t.equal(seen[0]?.clientCertificate, undefined);
});

t.test('tls.listen: HTTPS there, plain HTTP on listen, one handler', async (t) => {
  const pki = await makePki(t);
  const server = await pki.server('mirror');
  const reg = await startTestRegistry(t);
  const img = quickImage('two-listeners');
  reg.pushImage('library/alpine', '3', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, library: true } }, tls: { cert: server.cert, key: server.key, listen: '127.0.0.1:0' } });
  t.match(mirror.url, /^http:\/\//, 'listen stays plain');
  t.match(mirror.tlsUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.not(mirror.tlsHost, mirror.host, 'a listener of its own');

  const plain = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  t.equal(sha256(plain.body), img.manifestDigest, 'a pull over plain HTTP');
  const secure = await httpsGet(`${mirror.tlsUrl!}/v2/alpine/manifests/3`, { ca: pki.caCert });
  t.equal(sha256(secure.body), img.manifestDigest, 'the same pull over HTTPS');
  t.equal(secure.fingerprint, fingerprint(server.cert));
  await t.rejects(httpsGet(`https://${mirror.host}/v2/`, { ca: pki.caCert }), 'no TLS on the plain port');
  t.match(logged(mirror.logs, /^regmirror listening$/)[0], { protocol: 'http', httpsAddress: mirror.tlsHost, certificate: { subject: 'CN=mirror' } });

  // An open connection on each: close() drains both listeners.
  const agent = new Agent({ keepAlive: true, ca: readFileSync(pki.caCert) });
  t.teardown(() => agent.destroy());
  await httpsGet(`${mirror.tlsUrl!}/v2/`, { ca: pki.caCert, agent });
  await mirror.close();
  await t.rejects(httpsGet(`${mirror.tlsUrl!}/v2/`, { ca: pki.caCert }), { code: 'ECONNREFUSED' }, 'the HTTPS listener is closed');
  await t.rejects(request(`${mirror.url}/v2/`), { code: 'ECONNREFUSED' }, 'the plain one too');
});
