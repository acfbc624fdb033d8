import t from 'tap';
import { buildImage, buildLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';

const ALL = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const CANARY = `canary-${Math.random().toString(36).slice(2)}-secret`;

t.test('token auth with credentials, blob redirect without Authorization, and a canary secret that never leaks', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: CANARY }, redirectBlobs: true });
  const img = buildImage({ layers: [buildLayer({ 'secret.txt': 'private' })] });
  reg.pushImage('private/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: CANARY } } });
  const bodies: string[] = [];
  const record = (b: Buffer) => bodies.push(b.toString('latin1'));

  const manifest = await request(`${mirror.url}/v2/private/app/manifests/1`, { headers: { accept: ALL, authorization: 'Basic Y2xpZW50OnNlY3JldA==' } });
  record(manifest.body);
  t.equal(manifest.status, 200);
  t.equal(manifest.headers['docker-content-digest'], img.manifestDigest);
  const layer = img.layers[0]!;
  const blob = await request(`${mirror.url}/v2/private/app/blobs/${layer.digest}`);
  record(blob.body);
  t.equal(sha256(blob.body), layer.digest);

  const toBlobServer = reg.requests.filter((r) => r.server === 'blobs');
  t.ok(toBlobServer.length >= 1, 'the redirect was followed');
  t.ok(toBlobServer.every((r) => r.headers.authorization === undefined), 'no Authorization was sent to the redirect target');
  t.ok(
    reg.requests.filter((r) => r.server === 'registry').every((r) => r.headers.authorization !== 'Basic Y2xpZW50OnNlY3JldA=='),
    "the client's own Authorization is never forwarded upstream",
  );
  const tokensAfterFirst = reg.tokensIssued;
  await request(`${mirror.url}/v2/private/app/manifests/${img.manifestDigest}`);
  await request(`${mirror.url}/v2/private/app/blobs/${img.config.digest}`);
  t.equal(reg.tokensIssued, tokensAfterFirst, 'the token is cached per scope');

  // Faults and errors, all of which must keep the secret out of every answer.
  reg.inject({ match: { kind: 'manifest', pathIncludes: 'broken' }, type: 'status', status: 500 });
  record((await request(`${mirror.url}/v2/private/broken/manifests/1`)).body);
  record((await request(`${mirror.url}/v2/private/missing/manifests/1`)).body);
  record((await request(`${mirror.url}/v2/private/app/blobs/sha256:${'1'.repeat(64)}`)).body);
  await reg.stop();
  record((await request(`${mirror.url}/v2/private/gone/manifests/1`)).body);

  t.notOk(bodies.some((b) => b.includes(CANARY)), 'no response body contains the password');
  t.notOk(mirror.logs.some((l) => l.includes(CANARY)), 'no log line contains the password');
  t.notOk(mirror.logs.some((l) => /sig=|Bearer [A-Za-z0-9]/.test(l)), 'no token or signed URL in the logs');
  t.ok(mirror.logs.some((l) => l.includes('regmirror listening') && l.includes('[redacted]')), 'start-up logs the config with the secret redacted');
});

t.test("wrong upstream credentials become a gateway error naming the mirror's credentials, without a challenge", async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  reg.pushImage('private/app', '1', buildImage({ layers: [buildLayer({ 'f': 'x' })] }));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: 'wrong' } } });
  const res = await request(`${mirror.url}/v2/private/app/manifests/1`);
  t.equal(res.status, 502, 'not 401: the client has nothing to log in to');
  t.equal(errorCode(res), 'UNAVAILABLE');
  t.match(res.body.toString(), /mirror's credentials for docker\.io were rejected/);
  t.equal(res.headers['www-authenticate'], undefined, 'clients are not asked to log in to the mirror');
});

t.test('Docker Hub style 401 for a missing repository becomes 404', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', publicRepos: ['library/alpine'] }, unknownRepoIs401: true });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const res = await request(`${mirror.url}/v2/nobody/nothing/manifests/1`, { headers: { accept: ALL } });
  t.equal(res.status, 404);
  t.match(errorCode(res), /MANIFEST_UNKNOWN|NAME_UNKNOWN/);
});
