import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import type { Access, Identity } from '../../src/access/index.js';
import { CLOCK_SKEW_S, InvalidCredentials, loadSigningKey, TokenService, type SigningKey } from '../../src/auth/index.js';
import { parseRepositoryName } from '../../src/oci/index.js';

const alice: Identity = { subject: 'alice', kind: 'user', method: 'basic', groups: ['ops', 'dev'] };
const pull = (upstream: string, repository: string): Access => ({ upstream, repository: parseRepositoryName(repository), action: 'pull' });
const ALPINE = pull('docker.io', 'library/alpine');
const APP = pull('127.0.0.1:5001', 'team/app');
const TTL_MS = 5 * 60_000;

async function newKey(t: { teardown(fn: () => unknown): void }): Promise<SigningKey> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'regmirror-tokens-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return loadSigningKey({ configured: undefined, storageRoot: root });
}

/** A token service on a clock the test moves. */
async function world(t: { teardown(fn: () => unknown): void }) {
  const key = await newKey(t);
  const clock = { now: Date.UTC(2030, 0, 1) };
  const tokens = new TokenService({ key: async () => key, ttlMs: TTL_MS, now: () => clock.now });
  return { key, clock, tokens };
}

/** What a token signed with the mirror's own key by someone choosing the claims would look like. */
function forged(key: SigningKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const iat = Math.floor(Date.UTC(2030, 0, 1) / 1000);
  const base = { iss: 'regmirror', aud: 'regmirror', sub: 'alice', iat, nbf: iat, exp: iat + 300, jti: 'j', typ: 'access', kind: 'user', method: 'basic', groups: [], access: [] };
  return new SignJWT({ ...base, ...claims }).setProtectedHeader({ alg: key.alg, ...header }).sign(key.privateKey);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function refused(t: Test, tokens: TokenService, token: string, label: string, reason?: RegExp): Promise<void> {
  const err = await tokens.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof InvalidCredentials, `${label}: refused with InvalidCredentials`);
  if (reason !== undefined) t.match((err as Error).message, reason, label);
  if (token !== '') t.notOk(String((err as Error | undefined)?.message).includes(token), `${label}: the message does not echo the token`);
}

t.test('an access token carries the identity and the distribution access claim, and verifies back', async (t) => {
  const { key, clock, tokens } = await world(t);
  const issued = await tokens.issue(alice, [ALPINE, APP, ALPINE]);
  t.equal(issued.expiresIn, 300);
  t.equal(issued.issuedAt, '2030-01-01T00:00:00.000Z');
  t.same(decodeProtectedHeader(issued.token), { alg: 'ES256', typ: 'JWT', kid: key.kid });
  const claims = decodeJwt(issued.token);
  const iat = clock.now / 1000;
  t.match(claims, { iss: 'regmirror', aud: 'regmirror', sub: 'alice', iat, nbf: iat, exp: iat + 300, typ: 'access', kind: 'user', method: 'basic', groups: ['ops', 'dev'] });
  t.match(claims.jti, /^[0-9a-f-]{36}$/);
  t.same(claims['access'], [
    { type: 'repository', name: 'docker.io/library/alpine', actions: ['pull'] },
    { type: 'repository', name: '127.0.0.1:5001/team/app', actions: ['pull'] },
  ]);
  t.not(decodeJwt((await tokens.issue(alice, [])).token).jti, claims.jti, 'every token has its own jti');

  const verified = await tokens.verify(issued.token);
  t.same(verified, { identity: alice, access: [ALPINE, APP] });
  t.same(await tokens.verify(issued.token), verified, 'again, from the verified-token memory');
  t.same((await tokens.verify((await tokens.issue(alice, [])).token)).access, [], 'a token for /v2/ alone');
});

t.test('forged and foreign tokens fail closed', async (t) => {
  const { key, tokens } = await world(t);
  const genuine = (await tokens.issue(alice, [ALPINE])).token;
  const [header, payload, signature] = genuine.split('.');

  await refused(t, tokens, `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, 'alg none');
  await refused(t, tokens, `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.${signature}`, 'alg none with the old signature');

  const other = await world(t);
  await refused(t, tokens, (await other.tokens.issue(alice, [ALPINE])).token, 'signed by another key', /signature does not match/);

  // The classic confusion attack: HMAC keyed with the public key, which anyone can know.
  for (const [label, secret] of [
    ['PEM', Buffer.from(key.publicKey.export({ type: 'spki', format: 'pem' }))],
    ['DER', key.publicKey.export({ type: 'spki', format: 'der' })],
  ] as const) {
    const hs = await new SignJWT(decodeJwt(genuine)).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(new Uint8Array(secret));
    await refused(t, tokens, hs, `HS256 with the public key (${label})`, /algorithm this mirror does not use/);
  }

  const tampered = b64({ ...decodeJwt(genuine), access: [{ type: 'repository', name: 'docker.io/team/secret', actions: ['pull'] }] });
  await refused(t, tokens, `${header}.${tampered}.${signature}`, 'a tampered access claim', /signature/);
  const escalated = b64({ ...decodeJwt(genuine), sub: 'admin' });
  await refused(t, tokens, `${header}.${escalated}.${signature}`, 'a tampered subject');

  await refused(t, tokens, await forged(key, { aud: 'another-service' }), 'another audience', /aud claim/);
  await refused(t, tokens, await forged(key, { aud: ['another-service', 'third'] }), 'a list of other audiences', /aud claim/);
  await refused(t, tokens, await forged(key, { iss: 'https://auth.registry.example' }), 'another issuer', /iss claim/);
  await refused(t, tokens, await forged(key, { jti: undefined }), 'no jti', /jti claim/);
  await refused(t, tokens, 'not.a.jwt', 'garbage', /not a token this mirror issued/);
  await refused(t, tokens, '', 'empty');
});

t.test('expiry and not-before are checked against the clock, with a small skew', async (t) => {
  const { clock, tokens } = await world(t);
  const token = (await tokens.issue(alice, [ALPINE])).token;
  await tokens.verify(token); // remembered from here on: the memory must expire it too
  clock.now += TTL_MS + (CLOCK_SKEW_S - 1) * 1000;
  t.ok(await tokens.verify(token), 'within the skew after expiry');
  clock.now += 2000;
  await refused(t, tokens, token, 'expired (remembered)', /expired/);
  const fresh = await world(t);
  const unseen = (await fresh.tokens.issue(alice, [])).token;
  fresh.clock.now += TTL_MS + CLOCK_SKEW_S * 1000;
  await refused(t, fresh.tokens, unseen, 'expired (never verified before)', /expired/);

  // Issued by a replica whose clock runs ten minutes ahead.
  const ahead = await world(t);
  const early = new TokenService({ key: () => ahead.tokens.open(), ttlMs: TTL_MS, now: () => ahead.clock.now + 600_000 });
  await refused(t, ahead.tokens, (await early.issue(alice, [])).token, 'not yet valid', /nbf claim/);
  const slightly = new TokenService({ key: () => ahead.tokens.open(), ttlMs: TTL_MS, now: () => ahead.clock.now + (CLOCK_SKEW_S - 1) * 1000 });
  t.ok(await ahead.tokens.verify((await slightly.issue(alice, [])).token), 'a replica slightly ahead is tolerated');
});

t.test('refresh tokens and access tokens are not interchangeable', async (t) => {
  const { clock, tokens } = await world(t);
  const refresh = await tokens.issueRefresh(alice);
  const claims = decodeJwt(refresh);
  t.match(claims, { typ: 'refresh', sub: 'alice', aud: 'regmirror', iss: 'regmirror' });
  t.equal(claims['access'], undefined, 'a refresh token grants nothing by itself');
  t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 24 * 3600, 'lives a day by default');
  t.same(await tokens.verifyRefresh(refresh), alice);
  await refused(t, tokens, refresh, 'a refresh token used as an access token', /not an access token/);

  const access = (await tokens.issue(alice, [ALPINE])).token;
  await t.rejects(tokens.verifyRefresh(access), { name: 'InvalidCredentials', message: /not a refresh token/ }, 'an access token used to refresh');

  clock.now += 24 * 3_600_000 + CLOCK_SKEW_S * 1000;
  await t.rejects(tokens.verifyRefresh(refresh), { name: 'InvalidCredentials', message: /expired/ });
  const short = new TokenService({ key: () => tokens.open(), ttlMs: TTL_MS, refreshTtlMs: 3_600_000, now: () => clock.now });
  const shortClaims = decodeJwt(await short.issueRefresh(alice));
  t.equal((shortClaims.exp ?? 0) - (shortClaims.iat ?? 0), 3600, 'refreshTtlMs sets the life');
});

t.test('claims the mirror would never write fail the token even when the signature is good', async (t) => {
  const { key, tokens } = await world(t);
  const cases: [string, JWTPayload, RegExp][] = [
    ['no access claim', { access: undefined }, /no access claim/],
    ['a registry scope', { access: [{ type: 'registry', name: 'catalog', actions: ['*'] }] }, /not a repository/],
    ['a push action', { access: [{ type: 'repository', name: 'docker.io/a/b', actions: ['pull', 'push'] }] }, /unknown action/],
    ['no actions list', { access: [{ type: 'repository', name: 'docker.io/a/b' }] }, /unknown action/],
    ['a null entry', { access: [null] }, /not a repository/],
    ['no upstream', { access: [{ type: 'repository', name: 'alpine', actions: ['pull'] }] }, /names no upstream/],
    ['a bad repository name', { access: [{ type: 'repository', name: 'docker.io/../etc', actions: ['pull'] }] }, /not a repository name/],
    ['an unknown identity kind', { kind: 'root' }, /identity kind/],
    ['an unknown method', { method: 'magic' }, /authentication method/],
    ['groups not a list', { groups: 'ops' }, /groups/],
    ['an empty subject', { sub: '' }, /subject|sub claim/],
    ['no token type', { typ: undefined }, /not an access token/],
  ];
  for (const [label, claims, reason] of cases) await refused(t, tokens, await forged(key, claims), label, reason);
  t.same((await tokens.verify(await forged(key, { access: [{ type: 'repository', name: 'docker.io/a/b', actions: [] }] }))).access, [], 'an entry with no actions grants nothing');
});
