import t, { type Test } from 'tap';
import { ANONYMOUS_IDENTITY } from '../../src/access/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { errorCode, request, type RawResponse } from '../fixtures/http.js';
import { until } from '../fixtures/poll.js';
import { startMirror, type StartMirrorOptions } from '../fixtures/mirror.js';
import { basic, standInCredentials } from '../fixtures/stand-in-credentials.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// The read policy through a real mirror: what each client gets, and what upstream never hears of.

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };
const ALICE = basic('alice', 'alice-pw');
const BOB = basic('bob', 'bob-pw');
const DAN = basic('dan', 'dan-pw');
const ROBOT = basic('anything', 'robot-secret');

const ACCESS = {
  anonymous: ['docker.io/library/*', 'ghcr.io/**'],
  rules: [
    { repositories: ['docker.io/acme/**'], users: ['alice'] },
    { repositories: ['ghcr.io/team/*'], groups: ['devs'], tokens: ['ci'] },
  ],
  admin: { users: ['alice'] },
  metrics: 'admin',
};

async function world(t: Test, access: Record<string, unknown> = ACCESS, more: Partial<StartMirrorOptions> = {}) {
  const hub = await startTestRegistry(t);
  const priv = await startTestRegistry(t);
  const alpine = quickImage('policy-alpine');
  const secret = quickImage('policy-secret');
  const privateImage = quickImage('policy-private');
  hub.pushImage('library/alpine', '3', alpine);
  hub.pushImage('acme/secret', '1', secret);
  hub.pushImage('acme/other', '1', quickImage('policy-other'));
  hub.pushImage('acme/copy', '1', secret);
  hub.pushImage('team/app', '1', quickImage('policy-team'));
  priv.pushImage('team/private', '1', privateImage);
  const credentials = standInCredentials({
    users: { alice: { password: 'alice-pw' }, bob: { password: 'bob-pw' }, dan: { password: 'dan-pw', groups: ['devs'] } },
    robots: { 'robot-secret': 'ci' },
    tokens: {
      'alice-acme-secret': { identity: { subject: 'alice', kind: 'user', method: 'bearer', groups: [] }, access: ['docker.io/acme/secret'] },
      'anonymous-private': { identity: ANONYMOUS_IDENTITY, access: ['ghcr.io/team/private'] },
    },
  });
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: hub.url, library: true }, 'ghcr.io': { url: priv.url, private: true } },
    sections: { auth: { groups: { devs: ['dan'] } }, access },
    credentials,
    ...more,
  });
  hub.resetRequests();
  priv.resetRequests();
  return { hub, priv, alpine, secret, privateImage, mirror, credentials };
}

function get(url: string, authorization?: string, method = 'GET'): Promise<RawResponse> {
  return request(url, { method, headers: { ...ACCEPT, ...(authorization === undefined ? {} : { authorization }) } });
}

t.test('401 with the challenge for missing or wrong credentials, 403 for the authenticated', async (t) => {
  const { hub, mirror, secret, credentials } = await world(t);
  const realm = `Bearer realm="http://${mirror.host}/v2/token",service="regmirror"`;

  const anonymous = await get(`${mirror.url}/v2/acme/secret/manifests/1`);
  t.equal(anonymous.status, 401);
  t.equal(errorCode(anonymous), 'UNAUTHORIZED');
  t.equal(anonymous.headers['www-authenticate'], `${realm},scope="repository:acme/secret:pull"`, 'the scope names the repository as the client wrote it');

  const withNs = await get(`${mirror.url}/v2/acme/secret/manifests/1?ns=docker.io`);
  t.equal(withNs.headers['www-authenticate'], `${realm},scope="repository:docker.io/acme/secret:pull"`, 'with ?ns= the scope names the upstream, so the token request resolves alike');

  const wrong = await get(`${mirror.url}/v2/acme/secret/manifests/1`, basic('alice', 'nope'));
  t.equal(wrong.status, 401, 'a wrong password is a 401, never a fall-back to anonymous');
  t.equal(wrong.headers['www-authenticate'], `${realm},scope="repository:acme/secret:pull"`);

  const unknownScheme = await get(`${mirror.url}/v2/library/alpine/manifests/3`, 'Digest username="alice"');
  t.equal(unknownScheme.status, 401, 'credentials of an unknown scheme are refused even where anonymous may read');

  const bob = await get(`${mirror.url}/v2/acme/secret/manifests/1`, BOB);
  t.equal(bob.status, 403);
  t.equal(errorCode(bob), 'DENIED');
  t.equal(bob.headers['www-authenticate'], undefined, 'no challenge: logging in again would not help');
  t.equal(hub.count(), 0, 'no refused request reached upstream');

  const alice = await get(`${mirror.url}/v2/acme/secret/manifests/1`, ALICE);
  t.equal(alice.status, 200);
  t.equal(alice.headers['docker-content-digest'], secret.manifestDigest);
  const layer = await get(`${mirror.url}/v2/acme/secret/blobs/${secret.layers[0]!.digest}`, ALICE);
  t.equal(sha256(layer.body), secret.layers[0]!.digest);
  t.ok(credentials.seen.every((s) => s.remoteAddress === '127.0.0.1'), 'failed logins can be throttled by the client address');
});

t.test('a bearer token must name every access: a token for A used on B is refused', async (t) => {
  const { mirror, secret } = await world(t);
  const token = 'Bearer alice-acme-secret';
  t.equal((await get(`${mirror.url}/v2/acme/secret/manifests/1`, token)).status, 200, 'the repository the token is for');
  t.equal((await get(`${mirror.url}/v2/acme/secret/blobs/${secret.config.digest}`, token)).status, 200, 'its blobs too');

  const other = await get(`${mirror.url}/v2/acme/other/manifests/1`, token);
  t.equal(other.status, 401, 'alice may read acme/other, but not with this token');
  t.equal(
    other.headers['www-authenticate'],
    `Bearer realm="http://${mirror.host}/v2/token",service="regmirror",scope="repository:acme/other:pull",error="insufficient_scope"`,
    'the client is told to fetch a token for B',
  );
  const notHers = await get(`${mirror.url}/v2/team/app/manifests/1`, token);
  t.equal(notHers.status, 403, 'what alice may not read at all is DENIED, whichever token she brings');

  const forged = await get(`${mirror.url}/v2/acme/secret/manifests/1`, 'Bearer forged');
  t.equal(forged.status, 401);
  t.match(forged.headers['www-authenticate'], /error="invalid_token"/);
});

t.test('a private upstream: 401 before any upstream traffic, for anonymous and anonymous tokens', async (t) => {
  const { priv, mirror, privateImage } = await world(t);
  const paths = [
    '/v2/ghcr.io/team/private/manifests/1',
    '/v2/team/private/manifests/1?ns=ghcr.io',
    `/v2/ghcr.io/team/private/blobs/${privateImage.layers[0]!.digest}`,
    '/v2/ghcr.io/team/private/tags/list',
    '/v2/ghcr.io/team/missing/manifests/1',
  ];
  for (const path of paths) {
    const res = await get(`${mirror.url}${path}`);
    t.equal(res.status, 401, `${path}: anonymous, though access.anonymous says ghcr.io/**`);
    const head = await get(`${mirror.url}${path}`, undefined, 'HEAD');
    t.equal(head.status, 401, `${path}: HEAD too`);
    const anonToken = await get(`${mirror.url}${path}`, 'Bearer anonymous-private');
    t.equal(anonToken.status, 401, `${path}: a token issued anonymously`);
    t.equal((await get(`${mirror.url}${path}`, BOB)).status, 403, `${path}: a user no rule names`);
  }
  t.equal(priv.count(), 0, 'the private upstream heard nothing');

  t.equal((await get(`${mirror.url}/v2/ghcr.io/team/private/manifests/1`, DAN)).status, 200, 'a member of devs');
  t.equal((await get(`${mirror.url}/v2/ghcr.io/team/private/manifests/1`, ROBOT)).status, 200, 'the robot token ci, under any user name');
});

t.test('GET /v2/ without credentials: the challenge, even while anonymous may read something', async (t) => {
  const open = await world(t);
  // Clients set up authentication from this answer only: after a 200, docker and containers/image
  // never send the credentials of a login, and a private pull fails (tests/e2e/auth.test.ts).
  const ping = await get(`${open.mirror.url}/v2/`);
  t.equal(ping.status, 401, 'so clients learn where to log in');
  t.equal(ping.headers['www-authenticate'], `Bearer realm="http://${open.mirror.host}/v2/token",service="regmirror"`, 'no scope on /v2/');
  t.equal((await get(`${open.mirror.url}/v2/`, 'Bearer anonymous-private')).status, 200, "an anonymous token (docker's registry-mirrors fetches one) is enough for /v2/");
  t.equal((await get(`${open.mirror.url}/v2/_catalog`)).status, 401, 'the catalog alike');
  t.equal((await get(`${open.mirror.url}/v2/_catalog`, 'Bearer anonymous-private')).status, 200);
  t.equal((await get(`${open.mirror.url}/v2/library/alpine/manifests/3`)).status, 200, 'anonymous pulls of anonymous repositories need no token');
  t.equal((await get(`${open.mirror.url}/v2/`, basic('alice', 'nope'))).status, 401, 'wrong credentials are refused');
  t.equal((await get(`${open.mirror.url}/v2/`, ALICE)).status, 200);

  const closed = await world(t, { rules: [{ repositories: ['docker.io/**'], users: ['alice'] }] });
  const res = await get(`${closed.mirror.url}/v2/`);
  t.equal(res.status, 401);
  t.equal(res.headers['www-authenticate'], `Bearer realm="http://${closed.mirror.host}/v2/token",service="regmirror"`, 'no scope on /v2/');
  t.equal((await get(`${closed.mirror.url}/v2/`, ALICE)).status, 200);
  t.equal((await get(`${closed.mirror.url}/v2/`, BOB)).status, 200, 'any authenticated identity: /v2/ asks for no repository');
});

t.test('auth.realm replaces the realm derived from the Host header', async (t) => {
  const { mirror } = await world(t, ACCESS, { sections: { auth: { realm: 'https://mirror.example/v2/token' }, access: ACCESS } });
  const res = await get(`${mirror.url}/v2/acme/secret/manifests/1`);
  t.equal(res.headers['www-authenticate'], 'Bearer realm="https://mirror.example/v2/token",service="regmirror",scope="repository:acme/secret:pull"');
});

t.test('names cannot escape a pattern: path tricks are refused before the policy or upstream see them', async (t) => {
  const { hub, priv, mirror } = await world(t);
  const tricks = [
    '/v2/docker.io/../ghcr.io/team/private/manifests/1',
    '/v2/library/alpine/../../ghcr.io/team/private/manifests/1',
    '/v2/library/../acme/secret/manifests/1',
    '/v2/library/alpine%2f..%2f..%2facme/secret/manifests/1',
    '/v2/library%2falpine/manifests/3',
    '/v2/library/./alpine/manifests/3',
    '/v2/Library/Alpine/manifests/3',
    '/v2//acme/secret/manifests/1',
  ];
  for (const path of tricks) {
    const res = await get(`${mirror.url}${path}`);
    t.equal(res.status, 400, `${path}: refused as an invalid name`);
    t.equal(errorCode(res), 'NAME_INVALID', path);
  }
  // A name under the default upstream that merely looks like another registry stays there.
  const lookalike = await get(`${mirror.url}/v2/ghcr.io/team/private/manifests/1?ns=docker.io`);
  t.equal(lookalike.status, 401, '?ns= wins: docker.io/ghcr.io/team/private, which no anonymous pattern matches');
  t.equal(hub.count() + priv.count(), 0, 'nothing reached any upstream');
});

t.test('a blob is served only to a repository that holds it, also from the cache and in flight', async (t) => {
  const { hub, mirror, secret, alpine, privateImage } = await world(t);
  // alice and dan fill the cache with a private image of each upstream.
  for (const [path, auth] of [
    ['/v2/acme/secret', ALICE],
    ['/v2/ghcr.io/team/private', DAN],
  ] as const) {
    t.equal((await get(`${mirror.url}${path}/manifests/1`, auth)).status, 200);
  }
  for (const layer of [...secret.layers, secret.config]) t.equal((await get(`${mirror.url}/v2/acme/secret/blobs/${layer.digest}`, ALICE)).status, 200);
  for (const layer of privateImage.layers) t.equal((await get(`${mirror.url}/v2/ghcr.io/team/private/blobs/${layer.digest}`, DAN)).status, 200);
  await mirror.app.settled();

  for (const [label, digest] of [
    ['a layer only docker.io/acme/secret holds', secret.layers[0]!.digest],
    ['its config', secret.config.digest],
    ['a layer of the private upstream', privateImage.layers[0]!.digest],
  ]) {
    for (const auth of [undefined, ALICE]) {
      const res = await get(`${mirror.url}/v2/library/alpine/blobs/${digest}`, auth);
      t.equal(res.status, 404, `${label}, asked for under library/alpine${auth ? ' by alice' : ''}`);
      t.equal(errorCode(res), 'BLOB_UNKNOWN');
      t.not(sha256(res.body), digest, 'not the bytes');
      t.equal((await get(`${mirror.url}/v2/library/alpine/blobs/${digest}`, auth, 'HEAD')).status, 404, `${label}: HEAD too`);
    }
  }
  const manifest = await get(`${mirror.url}/v2/library/alpine/manifests/${secret.manifestDigest}`);
  t.equal(manifest.status, 404, 'a manifest by digest likewise');
  t.equal(errorCode(manifest), 'MANIFEST_UNKNOWN');

  // What library/alpine does hold comes from the cache, with no upstream round trip to confirm it.
  t.equal((await get(`${mirror.url}/v2/library/alpine/manifests/3`)).status, 200);
  await mirror.app.settled();
  for (const layer of alpine.layers) await get(`${mirror.url}/v2/library/alpine/blobs/${layer.digest}`);
  await mirror.app.settled();
  hub.resetRequests();
  const cached = await get(`${mirror.url}/v2/library/alpine/blobs/${alpine.layers[0]!.digest}`);
  t.equal(sha256(cached.body), alpine.layers[0]!.digest);
  t.equal(hub.count(), 0, 'a linked blob is served without asking upstream');
});

t.test('a blob in flight for one repository is not handed to another', async (t) => {
  const { hub, mirror, secret } = await world(t);
  t.equal((await get(`${mirror.url}/v2/acme/secret/manifests/1`, ALICE)).status, 200);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  hub.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 10, release: released, times: 1 });
  const layer = secret.layers[1]!;
  const alice = get(`${mirror.url}/v2/acme/secret/blobs/${layer.digest}`, ALICE);
  await until('the download paused upstream', () => hub.filter({ kind: 'blob', method: 'GET' }).some((r) => r.bytesSent > 0));
  const stolen = await get(`${mirror.url}/v2/library/alpine/blobs/${layer.digest}`);
  t.equal(stolen.status, 404, 'the download for acme/secret is not followed under library/alpine');
  t.equal(errorCode(stolen), 'BLOB_UNKNOWN');
  release();
  t.equal(sha256((await alice).body), layer.digest, "alice's own download finishes");
});

t.test('a repository upstream confirms gets the cached or in-flight blob once, then by its link', async (t) => {
  const { hub, mirror, secret } = await world(t);
  t.equal((await get(`${mirror.url}/v2/acme/secret/manifests/1`, ALICE)).status, 200);
  const [cachedLayer, pausedLayer] = secret.layers;
  t.equal(sha256((await get(`${mirror.url}/v2/acme/secret/blobs/${cachedLayer!.digest}`, ALICE)).body), cachedLayer!.digest);
  await mirror.app.settled();
  hub.resetRequests();
  // acme/copy holds the same image upstream, but no manifest of it was pulled through the mirror.
  const confirmed = await get(`${mirror.url}/v2/acme/copy/blobs/${cachedLayer!.digest}`, ALICE);
  t.equal(sha256(confirmed.body), cachedLayer!.digest);
  t.same(hub.requests.map((r) => `${r.method} ${r.kind} ${r.repo}`), ['HEAD blob acme/copy'], 'confirmed with a HEAD in its scope, not downloaded again');
  hub.resetRequests();
  t.equal((await get(`${mirror.url}/v2/acme/copy/blobs/${cachedLayer!.digest}`, ALICE)).status, 200);
  t.equal(hub.count(), 0, 'then linked: no second HEAD');

  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  hub.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 10, release: released, times: 1 });
  const first = get(`${mirror.url}/v2/acme/secret/blobs/${pausedLayer!.digest}`, ALICE);
  await until('the download paused upstream', () => hub.filter({ kind: 'blob', method: 'GET' }).some((r) => r.bytesSent > 0));
  t.equal((await get(`${mirror.url}/v2/acme/copy/blobs/${pausedLayer!.digest}`, ALICE, 'HEAD')).status, 200, 'a HEAD asks upstream in its own scope');
  t.equal((await get(`${mirror.url}/v2/library/alpine/blobs/${pausedLayer!.digest}`, undefined, 'HEAD')).status, 404, 'and hears 404 where the repository does not hold it');
  const joined = get(`${mirror.url}/v2/acme/copy/blobs/${pausedLayer!.digest}`, ALICE);
  await until('the joining request confirmed', () => hub.count({ kind: 'blob', method: 'HEAD', repo: 'acme/copy' }) === 2);
  release();
  t.equal(sha256((await joined).body), pausedLayer!.digest, 'confirmed, it follows the download in flight');
  t.equal(sha256((await first).body), pausedLayer!.digest);
  t.equal(hub.count({ kind: 'blob', method: 'GET' }), 1, 'one download for both');
});

t.test('a tag that moves to a digest cached for another repository links it to its own', async (t) => {
  let clock = Date.now();
  const { hub, mirror, secret } = await world(t, ACCESS, { now: () => clock });
  hub.pushImage('acme/moving', '1', quickImage('policy-moving'));
  t.equal((await get(`${mirror.url}/v2/acme/moving/manifests/1`, ALICE)).status, 200);
  t.equal((await get(`${mirror.url}/v2/acme/secret/manifests/1`, ALICE)).status, 200);
  hub.pushImage('acme/moving', '1', secret);
  clock += 10 * 60_000; // past manifestTTL: the next pull of the tag revalidates it
  const head = await get(`${mirror.url}/v2/acme/moving/manifests/1`, ALICE, 'HEAD');
  t.equal(head.headers['docker-content-digest'], secret.manifestDigest);
  hub.resetRequests();
  const byDigest = await get(`${mirror.url}/v2/acme/moving/manifests/${secret.manifestDigest}`, ALICE);
  t.equal(sha256(byDigest.body), secret.manifestDigest);
  t.equal(hub.count(), 0, 'served from the cache: the tag revalidation linked it');
});

t.test('operator endpoints: /metrics under access.metrics, status under access.admin, probes open', async (t) => {
  const { mirror } = await world(t);
  for (const path of ['/metrics', '/api/status', '/api/images', '/']) {
    const res = await get(`${mirror.url}${path}`);
    t.equal(res.status, 401, `${path}: anonymous`);
    t.equal(res.headers['www-authenticate'], 'Basic realm="regmirror", charset="UTF-8"', `${path}: a challenge a browser or scraper can answer`);
    t.equal((await get(`${mirror.url}${path}`, basic('alice', 'nope'))).status, 401, `${path}: wrong password`);
    t.equal((await get(`${mirror.url}${path}`, BOB)).status, 403, `${path}: not an admin`);
    t.equal((await get(`${mirror.url}${path}`, ALICE)).status, 200, `${path}: an admin`);
  }
  for (const path of ['/healthz', '/readyz']) t.equal((await get(`${mirror.url}${path}`)).status, 200, `${path}: probes need no credentials`);

  const scrape = await world(t, { ...ACCESS, metrics: 'anonymous' });
  t.equal((await get(`${scrape.mirror.url}/metrics`)).status, 200, 'metrics: "anonymous"');
  t.equal((await get(`${scrape.mirror.url}/api/status`)).status, 401, 'status stays admin-only');
});

t.test('the metrics.listen listener applies the same policy', async (t) => {
  const { mirror } = await world(t, ACCESS, { sections: { auth: {}, access: ACCESS, metrics: { listen: '127.0.0.1:0' } } });
  const ops = `http://127.0.0.1:${mirror.app.metricsAddress()!.port}`;
  const anonymous = await get(`${ops}/metrics`);
  t.equal(anonymous.status, 401);
  t.equal(errorCode(anonymous), 'UNAUTHORIZED');
  t.equal(anonymous.headers['www-authenticate'], 'Basic realm="regmirror", charset="UTF-8"');
  t.equal((await get(`${ops}/api/status`, BOB)).status, 403);
  t.equal((await get(`${ops}/api/status`, ALICE)).status, 200);
  t.equal((await get(`${ops}/healthz`)).status, 200);
});
