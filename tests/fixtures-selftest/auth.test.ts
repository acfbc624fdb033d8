import { createHash } from 'node:crypto';
import t from 'tap';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const sha = (b: ArrayBuffer): string => `sha256:${createHash('sha256').update(Buffer.from(b)).digest('hex')}`;
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** The token-spec dance by hand: parse the challenge, ask the realm, return the token. */
async function tokenFor(challenge: string | null, authorization?: string): Promise<{ status: number; token?: string; body: Record<string, unknown> }> {
  const params = Object.fromEntries([...(challenge ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const url = new URL(params.realm ?? 'http://invalid');
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) url.searchParams.append('scope', params.scope);
  const res = await fetch(url, { headers: authorization ? { authorization } : {} });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, body, ...(typeof body.token === 'string' ? { token: body.token } : {}) };
}

t.test('bearer: challenge, anonymous public token, credentials, expiry', async (t) => {
  const reg = await startTestRegistry(t, {
    auth: { kind: 'bearer', username: 'alice', password: 's3cret', publicRepos: ['library/pub'], service: 'registry.test' },
  });
  reg.pushImage('library/pub', 'latest', quickImage('pub'));
  reg.pushImage('team/private', 'latest', quickImage('priv'));

  const ping = await fetch(`${reg.url}/v2/`);
  t.equal(ping.status, 401);
  t.equal(ping.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="registry.test"`);
  t.equal(reg.tokenUrl, `${reg.url}/token`);

  const pubUrl = `${reg.url}/v2/library/pub/manifests/latest`;
  const first = await fetch(pubUrl);
  t.equal(first.status, 401);
  const challenge = first.headers.get('www-authenticate');
  t.equal(challenge, `Bearer realm="${reg.url}/token",service="registry.test",scope="repository:library/pub:pull"`);
  t.equal(((await first.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNAUTHORIZED');

  const anon = await tokenFor(challenge);
  t.equal(anon.status, 200);
  t.match(anon.body, { token: String, access_token: anon.token, expires_in: 300, issued_at: /^\d{4}-\d\d-\d\dT/ });
  t.ok((anon.token ?? '').length >= 40, 'unguessable token');
  const ok = await fetch(pubUrl, { headers: { authorization: `Bearer ${anon.token}` } });
  t.equal(ok.status, 200);
  await ok.arrayBuffer();
  t.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${anon.token}` } })).status, 200, 'any valid token opens /v2/');

  // Anonymous: a token, but without the private repository in it.
  const privUrl = `${reg.url}/v2/team/private/manifests/latest`;
  const privChallenge = (await fetch(privUrl)).headers.get('www-authenticate');
  const anonPriv = await tokenFor(privChallenge);
  const denied = await fetch(privUrl, { headers: { authorization: `Bearer ${anonPriv.token}` } });
  t.equal(denied.status, 401);
  t.match(denied.headers.get('www-authenticate'), /error="insufficient_scope"/);
  await denied.arrayBuffer();
  const pubTokenOnPriv = await fetch(privUrl, { headers: { authorization: `Bearer ${anon.token}` } });
  t.equal(pubTokenOnPriv.status, 401, 'a token is scoped to its repository');
  await pubTokenOnPriv.arrayBuffer();

  t.equal((await tokenFor(privChallenge, basic('alice', 'wrong'))).status, 401, 'wrong password');
  const authed = await tokenFor(privChallenge, basic('alice', 's3cret'));
  t.equal(authed.status, 200);
  const priv = await fetch(privUrl, { headers: { authorization: `Bearer ${authed.token}` } });
  t.equal(priv.status, 200);
  await priv.arrayBuffer();
  t.equal(reg.tokensIssued, 3);
  t.equal(reg.count({ server: 'token', kind: 'token' }), 4);
  t.equal(reg.filter({ server: 'token' })[0]?.query.get('service'), 'registry.test');

  reg.expireTokens();
  const stale = await fetch(privUrl, { headers: { authorization: `Bearer ${authed.token}` } });
  t.equal(stale.status, 401);
  t.match(stale.headers.get('www-authenticate'), /error="invalid_token"/);
  await stale.arrayBuffer();
  const forged = await fetch(pubUrl, { headers: { authorization: 'Bearer made-up' } });
  t.equal(forged.status, 401);
  await forged.arrayBuffer();
});

t.test('bearer: expiresIn is enforced on use', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', expiresIn: 0.001 } });
  reg.pushImage('a/b', 'x', quickImage('exp'));
  const url = `${reg.url}/v2/a/b/manifests/x`;
  const { token, body } = await tokenFor((await fetch(url)).headers.get('www-authenticate'));
  t.equal(body.expires_in, 0.001);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  t.equal(res.status, 401);
  await res.arrayBuffer();
});

t.test('bearer: separate token server and Docker Hub 401 for unknown repos', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer' }, unknownRepoIs401: true });
  t.equal(reg.tokenUrl, `${reg.url}/token`);
  const sep = await startTestRegistry(t, { auth: { kind: 'bearer', separateTokenServer: true } });
  t.not(new URL(sep.tokenUrl).port, new URL(sep.url).port);
  sep.pushImage('x/y', 'z', quickImage('sep'));
  const { token } = await tokenFor((await fetch(`${sep.url}/v2/x/y/manifests/z`)).headers.get('www-authenticate'));
  t.equal((await fetch(`${sep.url}/v2/x/y/manifests/z`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  t.equal(sep.count({ server: 'token' }), 1);

  const missing = `${reg.url}/v2/library/missing/manifests/latest`;
  const { token: t2 } = await tokenFor((await fetch(missing)).headers.get('www-authenticate'));
  const res = await fetch(missing, { headers: { authorization: `Bearer ${t2}` } });
  t.equal(res.status, 401, 'a valid token still gets 401 for a missing repository');
  await res.arrayBuffer();
});

t.test('basic auth', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'basic', username: 'u', password: 'p' } });
  reg.pushImage('b/c', 'd', quickImage('basic'));
  const res = await fetch(`${reg.url}/v2/b/c/manifests/d`);
  t.equal(res.status, 401);
  t.equal(res.headers.get('www-authenticate'), 'Basic realm="test-registry"');
  await res.arrayBuffer();
  t.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('u', 'x') } })).status, 401);
  const ok = await fetch(`${reg.url}/v2/b/c/manifests/d`, { headers: { authorization: basic('u', 'p') } });
  t.equal(ok.status, 200);
  t.equal(reg.filter({ kind: 'manifest' })[1]?.headers.authorization, basic('u', 'p'));
});

t.test('redirectBlobs: 307 to signed URL; blob server needs no auth and gets none', async (t) => {
  const reg = await startTestRegistry(t, { redirectBlobs: true, auth: { kind: 'bearer' } });
  const img = quickImage('redirect');
  reg.pushImage('r/s', 'v', img);
  const layer = img.layers[0];
  if (layer === undefined) throw new Error('no layer');
  const blobUrl = `${reg.url}/v2/r/s/blobs/${layer.digest}`;
  const { token } = await tokenFor((await fetch(blobUrl)).headers.get('www-authenticate'));
  const auth = { authorization: `Bearer ${token}` };

  const redirect = await fetch(blobUrl, { headers: auth, redirect: 'manual' });
  t.equal(redirect.status, 307);
  const location = redirect.headers.get('location') ?? '';
  t.match(location, new RegExp(`^${reg.blobServerUrl}/blobs/${layer.digest}\\?sig=[0-9a-f]{32}$`));
  t.not(reg.blobServerUrl, reg.url);
  const blob = await fetch(location);
  t.equal(blob.status, 200);
  t.equal(blob.headers.get('docker-content-digest'), null, 'storage hosts do not send it');
  t.equal(sha(await blob.arrayBuffer()), layer.digest);
  const part = await fetch(location, { headers: { range: 'bytes=1-' } });
  t.equal(part.status, 206);
  t.equal((await part.arrayBuffer()).byteLength, layer.size - 1);
  const blobRequests = reg.filter({ server: 'blobs' });
  t.equal(blobRequests.length, 2);
  t.ok(blobRequests.every((r) => r.headers.authorization === undefined && r.kind === 'blob'));

  const head = await fetch(blobUrl, { method: 'HEAD', headers: auth, redirect: 'manual' });
  t.equal(head.status, 200, 'HEAD is answered by the registry');
  t.equal(head.headers.get('content-length'), String(layer.size));
  const forged = await fetch(`${reg.blobServerUrl}/blobs/${layer.digest}?sig=0000`);
  t.equal(forged.status, 403);
  await forged.arrayBuffer();
});

t.test('rateLimit: manifest GETs count down, HEADs are free, 429 at zero', async (t) => {
  const reg = await startTestRegistry(t, { rateLimit: { limit: 100, remaining: 2 } });
  reg.pushImage('library/rl', 'latest', quickImage('rl'));
  const url = `${reg.url}/v2/library/rl/manifests/latest`;
  const headRes = await fetch(url, { method: 'HEAD' });
  t.equal(headRes.headers.get('ratelimit-remaining'), '2;w=21600');
  t.equal(headRes.headers.get('ratelimit-limit'), '100;w=21600');
  const first = await fetch(url);
  t.equal(first.headers.get('ratelimit-remaining'), '1;w=21600');
  await first.arrayBuffer();
  await (await fetch(url)).arrayBuffer();
  const limited = await fetch(url);
  t.equal(limited.status, 429);
  t.match(await limited.json(), { errors: [{ code: 'TOOMANYREQUESTS' }] });
  t.same(reg.rateLimit, { limit: 100, remaining: 0 });
  if (reg.rateLimit) reg.rateLimit.remaining = 5;
  t.equal((await fetch(url, { method: 'HEAD' })).headers.get('ratelimit-remaining'), '5;w=21600');
});
