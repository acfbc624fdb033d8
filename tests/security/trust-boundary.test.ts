import t, { type Test } from 'tap';
import { writeFileSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { quickImage, sha256 } from '../fixtures/images.js';
import { errorCode, request, type RawResponse } from '../fixtures/http.js';
import { until } from '../fixtures/poll.js';
import { startMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// The whole trust boundary with its real parts: an htpasswd file, robot tokens, the token endpoint's
// JWTs, the read policy, the audit log and a private upstream that needs the mirror's own credentials.
// Every case here must fail closed.

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const CANARY_PASSWORD = 'canary-pw-7f3e9a1c';
const UPSTREAM_SECRET = 'upstream-canary-5d2b';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function world(t: Test) {
  const hub = await startTestRegistry(t);
  const priv = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: UPSTREAM_SECRET } });
  const alpine = quickImage('trust-alpine');
  const privateImage = quickImage('trust-private');
  hub.pushImage('library/alpine', '3', alpine);
  priv.pushImage('team/app', '1', privateImage);
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: hub.url, library: true }, 'ghcr.io': { url: priv.url, private: true, username: 'mirror', password: UPSTREAM_SECRET } },
    sections: {
      auth: { htpasswd: 'htpasswd', groups: { devs: ['alice'] } },
      access: { anonymous: ['docker.io/**'], rules: [{ repositories: ['ghcr.io/team/*'], groups: ['devs'], tokens: ['ci'] }], admin: { users: ['alice'] } },
      audit: { path: 'audit.log' },
    },
    storage: withHtpasswd(t, { alice: CANARY_PASSWORD, bob: 'bob-pw' }),
  });
  hub.resetRequests();
  priv.resetRequests();
  return { hub, priv, alpine, privateImage, mirror };
}

/** A storage directory whose config-relative `htpasswd` is already written (startMirror resolves paths there). */
function withHtpasswd(t: Test, users: Record<string, string>): string {
  const storage = t.testdir({});
  writeHtpasswd(storage, users);
  return storage;
}

function writeHtpasswd(storage: string, users: Record<string, string>): void {
  const text = Object.entries(users)
    .map(([user, pw]) => `${user}:${bcrypt.hashSync(pw, 4)}`)
    .join('\n');
  // Replaced whole, as a Secret update is: never a half-written file.
  writeFileSync(path.join(storage, 'htpasswd.new'), `${text}\n`);
  renameSync(path.join(storage, 'htpasswd.new'), path.join(storage, 'htpasswd'));
}

function get(url: string, authorization?: string): Promise<RawResponse> {
  return request(url, { headers: { accept: ACCEPT, ...(authorization === undefined ? {} : { authorization }) } });
}

async function token(base: string, scope: string, authorization?: string): Promise<string> {
  const res = await get(`${base}/v2/token?service=regmirror&scope=${encodeURIComponent(scope)}`, authorization);
  if (res.status !== 200) throw new Error(`token request answered ${res.status}: ${res.body.toString()}`);
  return (JSON.parse(res.body.toString()) as { token: string }).token;
}

t.test('a token issued anonymously never opens a private repository', async (t) => {
  const { mirror, priv } = await world(t);
  const anon = await token(mirror.url, 'repository:ghcr.io/team/app:pull');
  const claims = JSON.parse(Buffer.from(anon.split('.')[1]!, 'base64url').toString()) as { access: unknown[] };
  t.same(claims.access, [], 'the endpoint left the scope out');
  const res = await get(`${mirror.url}/v2/ghcr.io/team/app/manifests/1`, `Bearer ${anon}`);
  t.equal(res.status, 401);
  t.match(res.headers['www-authenticate'], /scope="repository:ghcr.io\/team\/app:pull"/);
  t.equal(priv.count(), 0, 'no upstream traffic for an unauthorised request');
});

t.test('tokens from the endpoint: scope for A does not open B; a forged or unsigned token opens nothing', async (t) => {
  const { mirror, alpine, privateImage } = await world(t);
  const alice = basic('alice', CANARY_PASSWORD);
  const forApp = await token(mirror.url, 'repository:ghcr.io/team/app:pull', alice);
  t.equal((await get(`${mirror.url}/v2/ghcr.io/team/app/manifests/1`, `Bearer ${forApp}`)).headers['docker-content-digest'], privateImage.manifestDigest);
  const other = await get(`${mirror.url}/v2/ghcr.io/team/other/manifests/1`, `Bearer ${forApp}`);
  t.equal(other.status, 401, 'a token for team/app on team/other');
  t.match(other.headers['www-authenticate'], /error="insufficient_scope"/);

  const [header, payload] = forApp.split('.');
  const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
  t.equal((await get(`${mirror.url}/v2/ghcr.io/team/app/manifests/1`, `Bearer ${unsigned}`)).status, 401, 'alg none');
  const widened = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
  widened['access'] = [{ type: 'repository', name: 'ghcr.io/team/other', actions: ['pull'] }];
  const tampered = `${header}.${Buffer.from(JSON.stringify(widened)).toString('base64url')}.${forApp.split('.')[2]}`;
  t.equal((await get(`${mirror.url}/v2/ghcr.io/team/other/manifests/1`, `Bearer ${tampered}`)).status, 401, 'a widened access claim breaks the signature');
  t.equal((await get(`${mirror.url}/v2/library/alpine/manifests/3`, `Bearer ${forApp}`)).status, 401, 'even where anonymous may read, a token must cover the request');
  t.equal((await get(`${mirror.url}/v2/library/alpine/manifests/3`)).headers['docker-content-digest'], alpine.manifestDigest, 'anonymous itself still reads it');
});

t.test('a private blob asked for under a public repository name is not served', async (t) => {
  const { mirror, hub, privateImage } = await world(t);
  const alice = basic('alice', CANARY_PASSWORD);
  const layer = privateImage.layers[0]!.digest;
  const pulled = await get(`${mirror.url}/v2/ghcr.io/team/app/blobs/${layer}`, alice);
  t.equal(sha256(pulled.body), layer, 'alice pulled it: it is in the cache now');
  await mirror.app.settled();
  for (const who of [undefined, alice]) {
    const res = await get(`${mirror.url}/v2/library/alpine/blobs/${layer}`, who);
    t.equal(res.status, 404, `${who === undefined ? 'anonymous' : 'alice'}: the digest under library/alpine`);
    t.equal(errorCode(res), 'BLOB_UNKNOWN');
    t.notOk(res.body.includes(pulled.body.subarray(0, 64)), 'no byte of it');
  }
  t.ok(hub.count() >= 1, 'the public upstream was asked whether library/alpine holds it (it does not)');
});

t.test('robot tokens and htpasswd users: revoked, removed and reloaded fail closed', async (t) => {
  const { mirror, privateImage } = await world(t);
  const robot = await mirror.app.credentials.tokens.create({ name: 'ci' });
  const asRobot = basic('anyone', robot.secret);
  const url = `${mirror.url}/v2/ghcr.io/team/app/manifests/1`;
  t.equal((await get(url, asRobot)).headers['docker-content-digest'], privateImage.manifestDigest, 'the robot token reads what rules give `ci`');
  const robotBearer = await token(mirror.url, 'repository:ghcr.io/team/app:pull', asRobot);
  await mirror.app.credentials.tokens.revoke('ci');
  t.equal((await get(url, asRobot)).status, 401, 'revoked: the secret no longer authenticates');
  t.equal((await get(`${mirror.url}/v2/token?service=regmirror`, asRobot)).status, 401, 'nor gets a token');
  const revokedBearer = await get(url, `Bearer ${robotBearer}`);
  t.equal(revokedBearer.status, 401, 'an access token issued before the revocation is refused at once, not at its expiry');
  t.match(revokedBearer.headers['www-authenticate'], /error="invalid_token"/, 'as an invalid token: the client fetches a new one, and is refused there');

  t.equal((await get(url, basic('bob', 'bob-pw'))).status, 403, 'bob is a user, but no rule names him');
  const refresh = await request(`${mirror.url}/v2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=password&username=alice&password=${CANARY_PASSWORD}&service=regmirror&client_id=test&access_type=offline&scope=repository:ghcr.io/team/app:pull`,
  });
  t.equal(refresh.status, 200, 'the POST password grant');
  const { refresh_token: refreshToken, access_token: aliceBearer } = JSON.parse(refresh.body.toString()) as { refresh_token: string; access_token: string };
  t.equal((await get(url, `Bearer ${aliceBearer}`)).status, 200, 'her access token reads while she is in htpasswd');
  writeHtpasswd(mirror.storage, { bob: 'bob-pw' });
  await until('alice to be refused', async () => (await get(url, basic('alice', CANARY_PASSWORD))).status === 401);
  t.pass('alice removed from htpasswd: her password fails within seconds, without a restart');
  const refreshed = await request(`${mirror.url}/v2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=refresh_token&refresh_token=${refreshToken}&service=regmirror&client_id=test&scope=repository:ghcr.io/team/app:pull`,
  });
  t.equal(refreshed.status, 401, 'and her refresh token gets no new access token');
  t.equal((await get(url, `Bearer ${aliceBearer}`)).status, 401, 'and the access token she already holds is refused');
});

t.test('path tricks cannot step from a public name into a private repository', async (t) => {
  const { mirror, priv } = await world(t);
  for (const p of [
    '/v2/docker.io/../ghcr.io/team/app/manifests/1',
    '/v2/library/alpine/../../ghcr.io/team/app/manifests/1',
    '/v2/docker.io%2f..%2fghcr.io/team/app/manifests/1',
    '/v2/ghcr.io%2fteam/app/manifests/1',
    '/v2/team/app/manifests/1?ns=ghcr.io&ns=docker.io',
    '/v2/./ghcr.io/team/app/manifests/1',
  ]) {
    const res = await get(`${mirror.url}${p}`);
    t.ok([400, 401, 404].includes(res.status), `${p}: ${res.status}`);
    t.not(res.status, 200);
  }
  t.equal(priv.count(), 0, 'the private upstream heard nothing');
});

t.test('the mirror\'s own credentials rejected upstream: 502 that says so, never a 401 asking the client', async (t) => {
  const hub = await startTestRegistry(t);
  const priv = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  priv.pushImage('team/app', '1', quickImage('trust-wrong-creds'));
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: hub.url, library: true }, 'ghcr.io': { url: priv.url, private: true, username: 'mirror', password: 'wrong' } },
    sections: { auth: { htpasswd: 'htpasswd' }, access: { rules: [{ repositories: ['ghcr.io/**'], users: ['alice'] }] } },
    storage: withHtpasswd(t, { alice: CANARY_PASSWORD }),
  });
  const res = await get(`${mirror.url}/v2/ghcr.io/team/app/manifests/1`, basic('alice', CANARY_PASSWORD));
  t.equal(res.status, 502);
  t.equal(res.headers['www-authenticate'], undefined);
  t.match(res.body.toString(), /mirror's credentials for ghcr\.io were rejected/);
});

t.test('a canary password and a canary robot secret appear nowhere an operator or client can read', async (t) => {
  const { mirror } = await world(t);
  const robot = await mirror.app.credentials.tokens.create({ name: 'ci' });
  const secrets = [CANARY_PASSWORD, robot.secret, UPSTREAM_SECRET];
  const bodies: string[] = [];
  const alice = basic('alice', CANARY_PASSWORD);
  const asRobot = basic('ci', robot.secret);
  for (const auth of [alice, asRobot, basic('alice', `${CANARY_PASSWORD}x`), basic('x', `${robot.secret}x`)]) {
    for (const p of ['/v2/', '/v2/ghcr.io/team/app/manifests/1', '/v2/ghcr.io/team/app/manifests/nope', '/v2/token?service=regmirror&scope=repository:ghcr.io/team/app:pull', '/v2/token?service=other', '/api/status', '/metrics']) {
      const res = await get(`${mirror.url}${p}`, auth);
      bodies.push(res.body.toString(), JSON.stringify(res.headers));
    }
  }
  const form = `grant_type=password&username=alice&password=${CANARY_PASSWORD}x&service=regmirror&client_id=t`;
  bodies.push((await request(`${mirror.url}/v2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).body.toString());
  await mirror.app.close(1000);
  const places = { 'application log': mirror.logs.join('\n'), 'audit log': readFileSync(path.join(mirror.storage, 'audit.log'), 'utf8'), 'responses and headers': bodies.join('\n') };
  t.ok(places['audit log'].includes('"auth_failed"'), 'the failures were audited');
  for (const [where, text] of Object.entries(places)) {
    for (const secret of secrets) {
      for (const form of [secret, Buffer.from(secret).toString('base64'), encodeURIComponent(secret)]) t.notOk(text.includes(form), `${where}: no trace of a secret`);
    }
  }
  const tokenFile = readFileSync(path.join(mirror.storage, 'auth', 'tokens.json'), 'utf8');
  t.notOk(tokenFile.includes(robot.secret), 'the robot secret is stored only hashed');
});
