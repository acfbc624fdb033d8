import t, { type Test } from 'tap';
import { errorCode, request } from '../fixtures/http.js';
import { buildImage, buildLayer, sha256 } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startTlsFront } from '../fixtures/tls-front.js';
import { makePki } from '../fixtures/tls.js';
import { startDistribution } from '../fixtures/distribution.js';
import { toolsMissing } from '../fixtures/tools.js';

// An https upstream whose certificate comes from a CA the test makes: the TLS is real (node:tls in
// front of the in-process registry), so trust, client certificates and their failures are too.
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function world(t: Test) {
  const pki = await makePki(t, 'private registry CA');
  const reg = await startTestRegistry(t);
  const img = buildImage({ layers: [buildLayer({ 'app.txt': 'behind a private CA' })] });
  reg.pushImage('team/app', '1', img);
  const front = await startTlsFront(t, reg.url, { server: await pki.server('registry') });
  return { pki, reg, img, front };
}

async function pull(mirrorUrl: string, img: { manifestDigest: string; layers: readonly { digest: string }[] }) {
  const manifest = await request(`${mirrorUrl}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  const layer = img.layers[0]!;
  const blob = manifest.status === 200 ? await request(`${mirrorUrl}/v2/team/app/blobs/${layer.digest}`) : undefined;
  return { manifest, blobOk: blob !== undefined && blob.status === 200 && sha256(blob.body) === layer.digest };
}

t.test('a registry behind a private CA: refused without upstreams.<name>.ca (502 naming the key), served with it', async (t) => {
  const { pki, img, front } = await world(t);
  const without = await startMirror(t, { upstreams: { 'private.test': { url: front.url } } });
  const refused = await pull(without.url, img);
  t.equal(refused.manifest.status, 502, 'a trust problem is the operator\'s to fix: a gateway error, not a 503 to retry');
  t.equal(errorCode(refused.manifest), 'UNAVAILABLE');
  t.match(refused.manifest.body.toString(), /does not trust .*upstreams\.private\.test\.ca/);
  t.equal(refused.manifest.headers['retry-after'], undefined);

  const withCa = await startMirror(t, { upstreams: { 'private.test': { url: front.url, extra: { ca: pki.caCert } } } });
  const served = await pull(withCa.url, img);
  t.equal(served.manifest.status, 200);
  t.equal(served.manifest.headers['docker-content-digest'], img.manifestDigest);
  t.ok(served.blobOk, 'the blob arrives whole');
  t.ok(withCa.logs.some((l) => l.includes('regmirror listening') && l.includes(pki.caCert)), 'the start-up config names the CA file');
});

t.test('distribution requiring a client certificate: answered with clientCert/clientKey, a clear 502 without', { skip: toolsMissing(['docker-registry']).skip }, async (t) => {
  const pki = await makePki(t, 'private registry CA');
  const server = await pki.server('registry');
  const client = await pki.client('regmirror');
  const dist = await startDistribution(t, { tls: { ...server, clientCA: pki.caCert } });
  const ask = (url: string) => request(`${url}/v2/team/nothing/manifests/1`, { headers: { accept: ACCEPT } });

  const without = await startMirror(t, { upstreams: { 'mtls.test': { url: dist.url, extra: { ca: pki.caCert } } } });
  const refused = await ask(without.url);
  t.equal(refused.status, 502, 'the handshake is refused: the operator must configure a certificate');
  t.match(refused.body.toString(), /(refused the TLS handshake|closed the TLS connection without answering) .*upstreams\.mtls\.test\.clientCert/, 'the answer names the key to set');

  const withCert = await startMirror(t, { upstreams: { 'mtls.test': { url: dist.url, extra: { ca: pki.caCert, clientCert: client.cert, clientKey: client.key } } } });
  const answered = await ask(withCert.url);
  t.equal(answered.status, 404, 'the registry itself answered (it has no such repository): the handshake passed');
  t.match(errorCode(answered), /MANIFEST_UNKNOWN|NAME_UNKNOWN/);
});

t.test('a TLS 1.2 registry refusing a missing client certificate in the handshake: 502 naming clientCert', async (t) => {
  const pki = await makePki(t, 'private registry CA');
  const reg = await startTestRegistry(t);
  const front = await startTlsFront(t, reg.url, { server: await pki.server('registry'), clientCA: pki.caCert, maxVersion: 'TLSv1.2' });
  const mirror = await startMirror(t, { upstreams: { 'old.test': { url: front.url, extra: { ca: pki.caCert } } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  t.equal(res.status, 502);
  t.match(res.body.toString(), /refused the TLS handshake \(ERR_SSL_[A-Z0-9_]+\); if it requires a client certificate, set upstreams\.old\.test\.clientCert/);
});

t.test('insecureSkipVerify: served without the CA, warned at start, shown and counted in /api/status', async (t) => {
  const { img, front } = await world(t);
  const mirror = await startMirror(t, {
    upstreams: { 'lab.test': { url: front.url, extra: { insecureSkipVerify: true } }, 'other.test': { url: front.url } },
  });
  const served = await pull(mirror.url, img);
  t.equal(served.manifest.status, 200);
  t.ok(served.blobOk);
  const warning = mirror.logs.map((l) => JSON.parse(l) as { level: string; msg: string; key?: string }).find((l) => l.key === 'upstreams.lab.test.insecureSkipVerify');
  t.ok(warning, 'one log line names the key');
  t.equal(warning?.level, 'warn');
  t.match(warning?.msg, /NOT verified/);
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as {
    insecureSkipVerifyUpstreams: number;
    upstreams: { name: string; insecureSkipVerify: boolean }[];
  };
  t.equal(status.insecureSkipVerifyUpstreams, 1);
  t.same(
    status.upstreams.map((u) => [u.name, u.insecureSkipVerify]),
    [
      ['lab.test', true],
      ['other.test', false],
    ],
  );
});
