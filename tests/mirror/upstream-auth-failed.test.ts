import t from 'tap';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry, type AuthOptions } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import { scrape } from '../fixtures/prometheus.js';

// The mirror's own credentials failing upstream: what the client reads, what /api/status and the
// metrics say, and that the operator's log says it once, not once per pull.

interface UpstreamStatus {
  name: string;
  state: string;
  authFailure: { at: string; reason: string; message: string } | null;
}

async function upstreamStatus(mirror: TestMirror, name: string): Promise<UpstreamStatus | undefined> {
  const res = await request(`${mirror.url}/api/status`);
  return (JSON.parse(res.body.toString()) as { upstreams: UpstreamStatus[] }).upstreams.find((u) => u.name === name);
}

async function authFailures(mirror: TestMirror, upstream: string, reason: string): Promise<number | undefined> {
  return (await scrape(mirror.url)).value('regmirror_upstream_auth_failures_total', { upstream, reason });
}

/** The JSON log lines whose message matches. */
function lines(mirror: TestMirror, pattern: RegExp): { level: string; msg: string; reason?: string }[] {
  return mirror.logs.map((l) => JSON.parse(l) as { level: string; msg: string; reason?: string }).filter((l) => pattern.test(l.msg));
}

const WARN = 'warn';

t.test('credentials rejected by the token realm: 502 saying so, state auth-failed, counted, logged once; a later success clears it', async (t) => {
  // Kept by reference: the test "fixes" the upstream side by changing the password it accepts.
  const auth: AuthOptions & { kind: 'bearer' } = { kind: 'bearer', username: 'mirror', password: 'right' };
  const reg = await startTestRegistry(t, { auth });
  reg.pushImage('team/app', '1', quickImage('authfail-rejected'));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: 'wrong' } } });
  t.equal((await upstreamStatus(mirror, 'docker.io'))?.authFailure, null, 'no failure before any pull');

  for (let i = 0; i < 3; i++) {
    const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
    t.equal(res.status, 502);
    t.equal(errorCode(res), 'UNAVAILABLE');
    t.match(res.body.toString(), /the mirror's credentials for docker\.io were rejected/);
    t.notMatch(res.body.toString(), /withheld/);
  }
  const status = await upstreamStatus(mirror, 'docker.io');
  t.equal(status?.state, 'auth-failed');
  t.equal(status?.authFailure?.reason, 'rejected');
  t.match(status?.authFailure?.message, /token realm .*\/token rejected the configured credentials \(401\)/);
  t.notMatch(status?.authFailure?.message, /wrong/, 'no password in the reason');
  t.equal(await authFailures(mirror, 'docker.io', 'rejected'), 3, 'every failed call counted');

  const warned = lines(mirror, /credentials for docker\.io were rejected/);
  t.equal(warned.length, 1, 'one warn line for three failures within the minute');
  t.equal(warned[0]?.level, WARN);
  t.equal(warned[0]?.reason, 'rejected');
  t.equal(lines(mirror, /^answered 502/).length, 0, 'not logged a second time as a 502');

  auth.password = 'wrong';
  const ok = await request(`${mirror.url}/v2/team/app/manifests/1`);
  t.equal(ok.status, 200, 'the upstream accepts the credentials now');
  const after = await upstreamStatus(mirror, 'docker.io');
  t.equal(after?.state, 'ok', 'the state clears on a credentialed success');
  t.equal(after?.authFailure, null);
  t.equal(lines(mirror, /credentials for docker\.io work again/).length, 1, 'recovery said once');
});

t.test('Basic credentials rejected by the registry itself: the same state and wording', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'basic', username: 'mirror', password: 'right' } });
  reg.pushImage('team/app', '1', quickImage('authfail-basic'));
  const mirror = await startMirror(t, { upstreams: { 'registry.local': { url: reg.url, username: 'mirror', password: 'wrong' } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
  t.equal(res.status, 502);
  t.match(res.body.toString(), /the mirror's credentials for registry\.local were rejected/);
  const status = await upstreamStatus(mirror, 'registry.local');
  t.equal(status?.state, 'auth-failed');
  t.equal(status?.authFailure?.reason, 'rejected');
  t.equal(await authFailures(mirror, 'registry.local', 'rejected'), 1);
});

t.test('a token realm outside the trust boundary: credentials withheld, and the client is told that, not "rejected"', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  reg.pushImage('team/app', '1', quickImage('authfail-withheld'));
  // Reached as localhost, its realm names 127.0.0.1 over http: another host, so the password is kept back.
  const viaName = reg.url.replace('127.0.0.1', 'localhost');
  const mirror = await startMirror(t, { upstreams: { 'registry.local': { url: viaName, username: 'mirror', password: 'right' } } });
  for (let i = 0; i < 2; i++) {
    const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
    t.equal(res.status, 502);
    t.match(res.body.toString(), /the mirror's credentials for registry\.local were withheld from a token realm outside the upstream's domain/);
    t.notMatch(res.body.toString(), /were rejected/);
  }
  t.ok(reg.filter({ server: 'registry' }).concat(reg.filter({ kind: 'token' })).every((r) => r.headers.authorization === undefined || /^Bearer /.test(r.headers.authorization)), 'the password never left');
  const status = await upstreamStatus(mirror, 'registry.local');
  t.equal(status?.state, 'auth-failed');
  t.equal(status?.authFailure?.reason, 'withheld');
  t.equal(await authFailures(mirror, 'registry.local', 'withheld'), 2);
  t.equal(await authFailures(mirror, 'registry.local', 'rejected'), undefined);
  const warned = lines(mirror, /credentials for registry\.local were withheld/);
  t.equal(warned.length, 1);
  t.equal(warned[0]?.level, WARN);
});

t.test('anonymous refusal is no credential failure: DENIED, and the upstream is not auth-failed', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'basic', username: 'mirror', password: 'right' } });
  reg.pushImage('team/app', '1', quickImage('authfail-anonymous'));
  const mirror = await startMirror(t, { upstreams: { 'registry.local': { url: reg.url } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
  t.equal(res.status, 403);
  t.equal(errorCode(res), 'DENIED');
  t.notMatch(res.body.toString(), /mirror's credentials/);
  const status = await upstreamStatus(mirror, 'registry.local');
  t.not(status?.state, 'auth-failed');
  t.equal(status?.authFailure, null);
  t.equal(await authFailures(mirror, 'registry.local', 'rejected'), undefined);
});

t.test('a private repository answered 401 to an anonymous token stays a plain not-found (Docker Hub)', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', publicRepos: ['library/alpine'] }, unknownRepoIs401: true });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const res = await request(`${mirror.url}/v2/team/private/manifests/1`);
  t.equal(res.status, 404);
  t.equal((await upstreamStatus(mirror, 'docker.io'))?.authFailure, null);
});
