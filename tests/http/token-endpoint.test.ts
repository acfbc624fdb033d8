import t, { type Test } from 'tap';
import type { Identity } from '../../src/access/index.js';
import { InvalidCredentials, type PasswordVerifier } from '../../src/auth/index.js';
import type { AuditEvent, AuditSink } from '../../src/observability/index.js';
import { errorCode, request, type RawResponse } from '../fixtures/http.js';
import { startMirror, type StartMirrorOptions, type TestMirror } from '../fixtures/mirror.js';

// Canaries: a password and a robot secret that must never appear in a log line, an audit event or an error body.
const ALICE_PASSWORD = 'canary-alice-7f3a91';
const ROBOT_SECRET = 'canary-robot-c0ffee42';

const alice: Identity = { subject: 'alice', kind: 'user', method: 'basic', groups: ['dev'] };
const ci: Identity = { subject: 'ci', kind: 'token', method: 'robot', groups: [] };

/** Stand-ins for the htpasswd users and robot tokens: alice by password, the robot `ci` with any user name. */
const passwords: PasswordVerifier = {
  async verify(username, password) {
    if (username === 'alice' && password === ALICE_PASSWORD) return alice;
    if (password === ROBOT_SECRET) return ci;
    throw new InvalidCredentials(`no such user or wrong password for ${username}`);
  },
};

/** Stand-in read policy: anonymous reads alpine only; alice docker.io/library/* and ghcr.io/team/*; ci one repository. */
function canRead(identity: Identity, upstream: string, repository: string): boolean {
  const name = `${upstream}/${repository}`;
  if (name === 'docker.io/library/alpine') return true;
  if (identity.subject === 'alice') return name.startsWith('docker.io/library/') || name.startsWith('ghcr.io/team/');
  if (identity.subject === 'ci') return name === 'ghcr.io/team/app';
  return false;
}

interface TokenBody {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

function auditLog(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, record: (e) => void events.push(e) };
}

async function world(t: Test, options: Partial<StartMirrorOptions> = {}) {
  const audit = auditLog();
  const mirror = await startMirror(t, {
    // Never contacted: the token endpoint only resolves names against the configured upstreams.
    upstreams: { 'docker.io': { url: 'http://127.0.0.1:9', library: true }, 'ghcr.io': { url: 'http://127.0.0.1:9' } },
    sections: { auth: {} },
    credentials: { passwords },
    canRead,
    audit,
    ...options,
  });
  return { mirror, audit };
}

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function query(scopes: string[], extra: Record<string, string> = { service: 'regmirror' }): string {
  const q = new URLSearchParams(extra);
  for (const s of scopes) q.append('scope', s);
  return q.toString();
}

/** The granted accesses as `<upstream>/<repository>` names, checked through the mirror's own verifier. */
async function grantedNames(mirror: TestMirror, res: RawResponse): Promise<string[]> {
  const body = JSON.parse(res.body.toString()) as TokenBody;
  const verified = await mirror.app.tokens!.verify(body.token);
  return verified.access.map((a) => `${a.upstream}/${a.repository}`).sort();
}

function tokenBody(res: RawResponse): TokenBody {
  return JSON.parse(res.body.toString()) as TokenBody;
}

/** No log line, audit event or error body carries a password or a token. */
function assertNoSecrets(t: Test, mirror: TestMirror, audit: { events: AuditEvent[] }, secrets: string[], bodies: RawResponse[] = []): void {
  const places = { logs: mirror.logs.join('\n'), audit: JSON.stringify(audit.events), 'error bodies': bodies.map((b) => b.body.toString()).join('\n') };
  for (const [where, text] of Object.entries(places)) {
    for (const secret of secrets) t.notOk(text.includes(secret), `no secret in the ${where}`);
  }
}

t.test('anonymous GET: a token for what anonymous may read, the rest left out', async (t) => {
  const { mirror, audit } = await world(t);
  const res = await request(`${mirror.url}/v2/token?${query(['repository:alpine:pull', 'repository:team/app:pull', 'repository:ghcr.io/team/app:pull'])}`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'application/json');
  t.equal(res.headers['cache-control'], 'no-store', 'no proxy keeps a token');
  const body = tokenBody(res);
  t.equal(body.access_token, body.token, 'both names, as distribution answers');
  t.equal(body.expires_in, 300);
  t.match(body.issued_at, /^\d{4}-\d\d-\d\dT/);
  t.equal(body.refresh_token, undefined);
  t.same(await grantedNames(mirror, res), ['docker.io/library/alpine']);
  t.same((await mirror.app.tokens!.verify(body.token)).identity, { subject: 'anonymous', kind: 'anonymous', method: 'anonymous', groups: [] });
  t.match(audit.events, [{ event: 'token_issued', principal: 'anonymous', authMethod: 'anonymous', scopes: ['repository:docker.io/library/alpine:pull'], remoteAddress: '127.0.0.1', decision: 'allowed', status: 200, action: 'token' }]);

  const none = await request(`${mirror.url}/v2/token`);
  t.equal(none.status, 200, 'no scope at all: a token for /v2/');
  t.same(await grantedNames(mirror, none), []);
});

t.test('HTTP Basic GET: each scope resolved as routes resolve names, granted as the policy allows', async (t) => {
  const { mirror, audit } = await world(t);
  const scopes = [
    'repository:alpine:pull',
    'repository:library/alpine:pull,push', // only pull is granted: a read-only mirror
    'repository:docker.io/library/alpine:pull', // the same repository three ways: one entry
    'repository:library/busybox:pull',
    'repository:ghcr.io/team/app:pull',
    'repository:team/app:pull', // docker.io/team/app: not alice's
    'repository:quay.io/org/tool:pull', // no such upstream: docker.io/quay.io/org/tool, not allowed
    'repository:ghcr.io/team/db:push', // no pull asked: nothing to grant
    'registry:catalog:*',
  ];
  const res = await request(`${mirror.url}/v2/token?${query([scopes.slice(0, 2).join(' '), ...scopes.slice(2)], { service: 'regmirror', account: 'alice' })}`, {
    headers: basic('alice', ALICE_PASSWORD),
  });
  t.equal(res.status, 200);
  t.same(await grantedNames(mirror, res), ['docker.io/library/alpine', 'docker.io/library/busybox', 'ghcr.io/team/app']);
  t.same((await mirror.app.tokens!.verify(tokenBody(res).token)).identity, alice);
  t.same(audit.events.at(-1)?.scopes, ['repository:docker.io/library/alpine:pull', 'repository:docker.io/library/busybox:pull', 'repository:ghcr.io/team/app:pull']);
  t.match(audit.events.at(-1), { principal: 'alice', authMethod: 'basic' });

  const offline = await request(`${mirror.url}/v2/token?${query(['repository:ghcr.io/team/app:pull'], { service: 'regmirror', offline_token: 'true', client_id: 'docker' })}`, {
    headers: basic('anything', ROBOT_SECRET),
  });
  t.same(await grantedNames(mirror, offline), ['ghcr.io/team/app'], 'a robot token as the password, with any user name');
  t.equal(tokenBody(offline).refresh_token, undefined, 'no refresh token on GET: docker login would keep it instead of the password');
  t.match(audit.events.at(-1), { principal: 'ci', authMethod: 'robot' });
  assertNoSecrets(t, mirror, audit, [ALICE_PASSWORD, ROBOT_SECRET, tokenBody(res).token]);
});

t.test('wrong credentials: 401, and an auth_failed event naming the user tried', async (t) => {
  const { mirror, audit } = await world(t);
  const wrong = await request(`${mirror.url}/v2/token?${query(['repository:alpine:pull'])}`, { headers: basic('alice', `${ALICE_PASSWORD}-typo`) });
  t.equal(wrong.status, 401);
  t.equal(errorCode(wrong), 'UNAUTHORIZED');
  t.match(wrong.body.toString(), /incorrect username or password/);
  const unknown = await request(`${mirror.url}/v2/token`, { headers: basic('mallory', 'guess') });
  t.same(JSON.parse(unknown.body.toString()), JSON.parse(wrong.body.toString()), 'an unknown user reads exactly like a wrong password');
  const posted = await request(`${mirror.url}/v2/token`, {
    method: 'POST',
    headers: FORM,
    body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'nope', service: 'regmirror', client_id: 'containerd-client' }).toString(),
  });
  t.equal(posted.status, 401);
  t.match(audit.events, [
    { event: 'auth_failed', principal: 'alice', authMethod: 'basic', status: 401, decision: 'challenged', remoteAddress: '127.0.0.1' },
    { event: 'auth_failed', principal: 'mallory' },
    { event: 'auth_failed', principal: 'alice' },
  ]);
  t.equal(audit.events.length, 3, 'no token issued');
  assertNoSecrets(t, mirror, audit, [`${ALICE_PASSWORD}-typo`, 'guess'], [wrong, unknown, posted]);
});

t.test("POST grant_type=password, as containerd sends it, with and without access_type=offline", async (t) => {
  const { mirror, audit } = await world(t);
  const form = { grant_type: 'password', username: 'alice', password: ALICE_PASSWORD, service: 'regmirror', client_id: 'containerd-client' };
  const scope = 'repository:alpine:pull repository:ghcr.io/team/app:pull repository:ghcr.io/other/x:pull';
  const online = await request(`${mirror.url}/v2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: new URLSearchParams({ ...form, scope }).toString() });
  t.equal(online.status, 200);
  t.same(await grantedNames(mirror, online), ['docker.io/library/alpine', 'ghcr.io/team/app']);
  t.equal(tokenBody(online).refresh_token, undefined);
  t.equal(tokenBody(online).scope, 'repository:docker.io/library/alpine:pull repository:ghcr.io/team/app:pull', 'OAuth2 names the scope granted');

  const offline = await request(`${mirror.url}/v2/token`, { method: 'POST', headers: FORM, body: new URLSearchParams({ ...form, scope, access_type: 'offline' }).toString() });
  t.equal(offline.status, 200);
  const refresh = tokenBody(offline).refresh_token;
  t.type(refresh, 'string');
  t.same(await mirror.app.tokens!.verifyRefresh(refresh!), alice);
  await t.rejects(mirror.app.tokens!.verify(refresh!), { name: 'InvalidCredentials' }, 'the refresh token is no access token');
  t.match(audit.events, [{ event: 'token_issued', principal: 'alice' }, { event: 'token_issued', principal: 'alice' }]);
  assertNoSecrets(t, mirror, audit, [ALICE_PASSWORD, refresh!, tokenBody(online).token]);
});

t.test('POST grant_type=refresh_token: new access tokens for whoever the refresh token names, as they are now', async (t) => {
  const gone = new Set<string>();
  const { mirror, audit } = await world(t, { refreshIdentity: async (identity) => (gone.has(identity.subject) ? undefined : { ...identity, groups: ['dev', 'new'] }) });
  const login = await request(`${mirror.url}/v2/token`, {
    method: 'POST',
    headers: FORM,
    body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: ALICE_PASSWORD, access_type: 'offline', client_id: 'buildkit' }).toString(),
  });
  const refreshToken = tokenBody(login).refresh_token!;
  const refresh = (scope: string, token = refreshToken) =>
    request(`${mirror.url}/v2/token`, { method: 'POST', headers: FORM, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, scope, service: 'regmirror', access_type: 'offline' }).toString() });

  const res = await refresh('repository:library/busybox:pull repository:team/app:pull');
  t.equal(res.status, 200);
  t.same(await grantedNames(mirror, res), ['docker.io/library/busybox']);
  t.same((await mirror.app.tokens!.verify(tokenBody(res).token)).identity.groups, ['dev', 'new'], "the identity's current groups");
  t.equal(tokenBody(res).refresh_token, undefined, 'a refresh never extends its own life');
  t.match(audit.events.at(-1), { event: 'token_issued', principal: 'alice', authMethod: 'refresh_token' });

  const withAccessToken = await refresh('repository:alpine:pull', tokenBody(login).token);
  t.equal(withAccessToken.status, 401, 'an access token is not a refresh token');
  t.match(withAccessToken.body.toString(), /refresh token is not valid/);

  gone.add('alice');
  const afterRemoval = await refresh('repository:alpine:pull');
  t.equal(afterRemoval.status, 401, 'a removed user cannot refresh');
  t.match(audit.events.at(-1), { event: 'auth_failed', principal: undefined, authMethod: 'refresh_token', status: 401 });
  assertNoSecrets(t, mirror, audit, [refreshToken, ALICE_PASSWORD], [withAccessToken, afterRemoval]);
});

t.test('malformed requests: 400 with an OCI error body, before any password is checked', async (t) => {
  let checked = 0;
  const counting: PasswordVerifier = { verify: (u, p) => (checked++, passwords.verify(u, p)) };
  const { mirror, audit } = await world(t, { credentials: { passwords: counting } });
  const post = (body: string, headers: Record<string, string> = FORM) => request(`${mirror.url}/v2/token`, { method: 'POST', headers, body });
  const cases: [string, Promise<RawResponse>, number, string][] = [
    ['another service', request(`${mirror.url}/v2/token?service=registry.example&scope=repository:alpine:pull`, { headers: basic('alice', ALICE_PASSWORD) }), 400, 'unknown service'],
    ['a scope without actions', request(`${mirror.url}/v2/token?scope=repository:alpine`, { headers: basic('alice', ALICE_PASSWORD) }), 400, 'is not resource-type:name:actions'],
    ['an invalid repository name', request(`${mirror.url}/v2/token?scope=repository:Alpine:pull`), 400, 'NAME_INVALID'],
    ['too many scopes', request(`${mirror.url}/v2/token?${query(Array.from({ length: 101 }, (_, i) => `repository:r${i}:pull`))}`), 400, 'at most 100 scopes'],
    ['Bearer instead of Basic', request(`${mirror.url}/v2/token`, { headers: { authorization: 'Bearer abc' } }), 400, 'HTTP Basic credentials or none'],
    ['Basic without a colon', request(`${mirror.url}/v2/token`, { headers: { authorization: `Basic ${Buffer.from('alice').toString('base64')}` } }), 400, 'username:password'],
    ['a JSON body', post('{"grant_type":"password"}', { 'content-type': 'application/json' }), 400, 'x-www-form-urlencoded'],
    ['no grant_type', post('username=alice'), 400, 'grant_type is missing'],
    ['an unknown grant_type', post('grant_type=client_credentials'), 400, 'unsupported grant_type'],
    ['a password grant without password', post('grant_type=password&username=alice'), 400, 'needs username and password'],
    ['a refresh grant without token', post('grant_type=refresh_token'), 400, 'needs refresh_token'],
    ['a form too large', post(`grant_type=password&username=alice&password=${'x'.repeat(20_000)}`), 400, 'larger than 16384 bytes'],
    ['PUT', request(`${mirror.url}/v2/token`, { method: 'PUT' }), 405, 'GET or POST'],
  ];
  for (const [label, pending, status, message] of cases) {
    const res = await pending;
    t.equal(res.status, status, label);
    t.match(res.body.toString(), message, label);
    t.ok(errorCode(res), `${label}: an OCI error body`);
  }
  t.equal(checked, 0, 'no credential was checked for a malformed request');
  t.equal(audit.events.length, 0, 'nothing issued, no failed login');
  const chunked = await new Promise<number>((resolve, reject) => {
    // Without a Content-Length: the limit applies as the body streams in.
    import('node:http').then(({ request: raw }) => {
      const req = raw({ host: '127.0.0.1', port: Number(mirror.host.split(':')[1]), path: '/v2/token', method: 'POST', headers: FORM }, (res) => {
        t.equal(res.headers.connection, 'close', 'the unread rest of the body closes the connection');
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('grant_type=password&password=');
      req.write('y'.repeat(20_000));
      req.end();
    }, reject);
  });
  t.equal(chunked, 400);

  // A client that leaves halfway through its form: nothing to answer, and the mirror carries on.
  await new Promise<void>((resolve) => {
    void import('node:http').then(({ request: raw }) => {
      const req = raw({ host: '127.0.0.1', port: Number(mirror.host.split(':')[1]), path: '/v2/token', method: 'POST', headers: { ...FORM, 'content-length': '100' } });
      req.on('error', () => resolve());
      req.write('grant_type=password&username=al', () => setTimeout(() => req.destroy(), 50));
    });
  });
  t.equal((await request(`${mirror.url}/v2/token`)).status, 200, 'still serving');
});

t.test('without auth there is no token endpoint, and nothing to sign with', async (t) => {
  const { mirror } = await world(t, { sections: {} });
  t.equal(mirror.app.tokens, undefined);
  const res = await request(`${mirror.url}/v2/token?service=regmirror`);
  t.equal(res.status, 404, 'just another path the route grammar does not know');
  t.equal((await request(`${mirror.url}/v2/token`, { method: 'POST', headers: FORM, body: 'grant_type=password' })).status, 405);
});

t.test('the default user source and read policy, when the App is given none, let nobody in and grant nothing', async (t) => {
  const { mirror } = await world(t, { credentials: {}, canRead: undefined });
  t.equal((await request(`${mirror.url}/v2/token`, { headers: basic('alice', ALICE_PASSWORD) })).status, 401);
  const anonymous = await request(`${mirror.url}/v2/token?scope=repository:alpine:pull`);
  t.same(await grantedNames(mirror, anonymous), []);
});

t.test('the access controller learns whether the connection is TLS, for the realm it derives', async (t) => {
  const seen: (boolean | undefined)[] = [];
  const { mirror } = await world(t, {
    access: {
      authorize: async (req) => (seen.push(req.secure), { principal: 'x' }),
      authorizeOps: async () => ({ principal: 'x' }),
      canRead: () => true,
    },
  });
  await request(`${mirror.url}/v2/`);
  t.same(seen, [false]);
});
