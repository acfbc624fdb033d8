import t, { type Test } from 'tap';
import bcrypt from 'bcryptjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as CredentialsModule from '../../src/auth/credentials.js';
import { InvalidCredentials } from '../../src/auth/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { buildMirror } from '../fixtures/mirror.js';

// The mirror's PasswordVerifier: htpasswd users and robot tokens behind the failure throttle, with
// bcrypt counted (not timed) to show an unknown user costs what a known one does.

const CANARY_PASSWORD = 'canary-password-7f3a9c';
const hash = (password: string) => `$2y$${bcrypt.hashSync(password, 4).slice(4)}`;

interface World {
  readonly credentials: CredentialsModule.Credentials;
  readonly compares: Array<{ password: string; cost: number }>;
  readonly sleeps: number[];
  readonly logs: string[];
  readonly file: string;
  readonly advance: (ms: number) => void;
}

async function world(t: Test, options: { htpasswd?: string | false; groups?: Record<string, string[]> } = {}): Promise<World> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rm-credentials-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const file = path.join(root, 'htpasswd');
  if (options.htpasswd !== false) writeFileSync(file, options.htpasswd ?? `alice:${hash(CANARY_PASSWORD)}\nbob:${hash('bob-pass')}\n`);
  const compares: Array<{ password: string; cost: number }> = [];
  const counting = {
    ...bcrypt,
    compare: (password: string, h: string) => {
      compares.push({ password, cost: bcrypt.getRounds(h) });
      return bcrypt.compare(password, h);
    },
  };
  const { Credentials } = await t.mockImport<typeof CredentialsModule>('../../src/auth/credentials.js', {
    '../../src/auth/htpasswd-users.js': await t.mockImport('../../src/auth/htpasswd-users.js', { bcryptjs: { default: counting } }),
  });
  const config = parseConfig(
    {
      upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } },
      storage: { path: root },
      auth: { ...(options.htpasswd === false ? {} : { htpasswd: file }), groups: options.groups ?? {} },
    },
    { baseDir: root, env: {} },
  );
  const logs: string[] = [];
  let clock = 5_000_000;
  const sleeps: number[] = [];
  const credentials = new Credentials({
    auth: config.auth,
    storageRoot: root,
    upstreams: config.upstreams,
    logger: createLogger('debug', { write: (l: string) => void logs.push(l) }),
    now: () => clock,
    throttle: {
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
    watch: { pollMs: 60_000 },
    lastUsedFlushMs: 10,
  });
  await credentials.open();
  t.teardown(() => credentials.close());
  return { credentials, compares, sleeps, logs, file, advance: (ms) => void (clock += ms) };
}

const refused = (p: Promise<unknown>) => p.then(() => false, (err: unknown) => err instanceof InvalidCredentials);

t.test('htpasswd users: identity with their groups; wrong and unknown cost the same bcrypt check', async (t) => {
  const w = await world(t, { groups: { devs: ['alice', 'carol'], admins: ['alice'], ops: ['bob'] } });
  t.same(await w.credentials.verify('alice', CANARY_PASSWORD, '192.0.2.1'), { subject: 'alice', kind: 'user', method: 'basic', groups: ['admins', 'devs'] });
  t.same((await w.credentials.verify('bob', 'bob-pass'))?.groups, ['ops']);
  t.same(w.credentials.groupsOf('carol'), ['admins', 'devs'].filter((g) => g === 'devs'), 'a certificate CN gets its groups too');
  w.compares.length = 0;
  t.ok(await refused(w.credentials.verify('alice', 'wrong', '192.0.2.1')), 'wrong password');
  t.ok(await refused(w.credentials.verify('mallory', CANARY_PASSWORD, '192.0.2.2')), 'unknown user');
  t.ok(await refused(w.credentials.verify('bob', 'rmt_' + 'A'.repeat(43), '192.0.2.3')), 'a robot-shaped password that is no token');
  t.same(
    w.compares.map((c) => c.cost),
    [4, 4, 4],
    'every failure ran one bcrypt compare at the users’ cost, known user or not',
  );
});

t.test('a verified password is remembered (one bcrypt per minute, not per request) until the file changes', async (t) => {
  const w = await world(t);
  w.compares.length = 0;
  for (let i = 0; i < 5; i++) await w.credentials.verify('bob', 'bob-pass');
  t.equal(w.compares.length, 1, 'HTTP Basic on every request costs one check');
  t.ok(await refused(w.credentials.verify('bob', 'bob-pass2')), 'another password is not the remembered one');
  w.advance(60_000);
  await w.credentials.verify('bob', 'bob-pass');
  t.equal(w.compares.length, 3, 'checked again after a minute');
  writeFileSync(w.file, `alice:${hash('a')}\n`);
  await w.credentials.users?.reload();
  t.ok(await refused(w.credentials.verify('bob', 'bob-pass')), 'removed from the file: refused at once, remembered or not');
});

t.test('parallel first requests with the same password share one bcrypt check', async (t) => {
  const w = await world(t);
  w.compares.length = 0;
  const identities = await Promise.all(Array.from({ length: 16 }, () => w.credentials.verify('bob', 'bob-pass', '192.0.2.7')));
  t.equal(w.compares.length, 1, 'a pull fetching its layers in parallel costs one check, not one per request');
  t.ok(identities.every((i) => i.subject === 'bob'));
  const wrong = await Promise.all(Array.from({ length: 4 }, () => refused(w.credentials.verify('bob', 'guess', '192.0.2.8'))));
  t.same(wrong, [true, true, true, true], 'a shared failed check fails every request that waited for it');
  t.equal(w.compares.length, 2);
  t.equal(w.sleeps.length, 4, 'and each of them still pays the failure delay');
  const other = await Promise.all([w.credentials.verify('alice', CANARY_PASSWORD), w.credentials.verify('bob', 'bob-pass2').catch(() => undefined)]);
  t.equal(other[0].subject, 'alice');
  t.equal(w.compares.length, 4, 'different credentials are never shared');
});

t.test('robot tokens: any user name; revoked or expired refused', async (t) => {
  const w = await world(t);
  const ci = await w.credentials.tokens.create({ name: 'ci', expiresInMs: 1000 });
  const nodes = await w.credentials.tokens.create({ name: 'nodes' });
  for (const user of ['ci', 'anything', '', 'alice']) t.same(await w.credentials.verify(user, ci.secret), { subject: 'ci', kind: 'token', method: 'robot', groups: [] }, `user "${user}"`);
  t.equal(w.compares.length, 0, 'a live token costs no bcrypt');
  await w.credentials.tokens.revoke('nodes');
  t.ok(await refused(w.credentials.verify('x', nodes.secret)), 'revoked');
  w.advance(1000);
  t.ok(await refused(w.credentials.verify('x', ci.secret)), 'expired');
});

t.test('without auth.htpasswd: robot tokens only', async (t) => {
  const w = await world(t, { htpasswd: false });
  t.equal(w.credentials.users, undefined);
  t.ok(await refused(w.credentials.verify('alice', CANARY_PASSWORD)));
  const ci = await w.credentials.tokens.create({ name: 'ci' });
  t.equal((await w.credentials.verify('x', ci.secret)).subject, 'ci');
});

t.test('failures cost their address a growing delay; other addresses and successes pay nothing', async (t) => {
  const w = await world(t);
  for (let i = 0; i < 3; i++) await refused(w.credentials.verify('alice', 'guess', '203.0.113.9'));
  t.same(w.sleeps, [250, 500, 1000]);
  await w.credentials.verify('bob', 'bob-pass', '198.51.100.1');
  t.same(w.sleeps, [250, 500, 1000], 'another address: no delay');
  t.equal(w.credentials.throttle.penaltyOf('203.0.113.9'), 2000);
});

t.test('a canary password and a canary robot secret appear in no log line', async (t) => {
  const w = await world(t, { htpasswd: `alice:${hash(CANARY_PASSWORD)}\ncarol:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n` });
  const robot = await w.credentials.tokens.create({ name: 'ci', read: ['docker.io/team/*'] });
  for (let i = 0; i < 8; i++) await refused(w.credentials.verify('alice', `${CANARY_PASSWORD}-wrong`, '203.0.113.9'));
  await w.credentials.verify('alice', CANARY_PASSWORD, '203.0.113.9');
  await w.credentials.verify(CANARY_PASSWORD, robot.secret, '203.0.113.9');
  await refused(w.credentials.verify('ci', `${robot.secret.slice(0, -2)}zz`, '203.0.113.9'));
  writeFileSync(w.file, `alice:${hash(CANARY_PASSWORD)}\nbroken line ${CANARY_PASSWORD}\n`);
  await w.credentials.users?.reload();
  await w.credentials.tokens.revoke('ci');
  await w.credentials.close();
  const text = w.logs.join('');
  t.match(text, /repeated authentication failures/, 'the log did see the attempts');
  t.match(text, /htpasswd file not reloaded/);
  t.notOk(text.includes(CANARY_PASSWORD), 'no canary password');
  t.notOk(text.includes(robot.secret.slice(4, 20)), 'no canary robot secret');
});

t.test('the App opens credentials with the storage: a bad htpasswd or token file stops the start', async (t) => {
  const storage = mkdtempSync(path.join(os.tmpdir(), 'rm-app-credentials-'));
  t.teardown(() => rmSync(storage, { recursive: true, force: true }));
  const upstreams = { 'docker.io': { url: 'http://127.0.0.1:9' } };
  const missing = buildMirror(t, { upstreams, storage, sections: { auth: { htpasswd: 'htpasswd' } } });
  await t.rejects(missing.start(), { name: 'HtpasswdError', message: /htpasswd file .*htpasswd cannot be read \(ENOENT\)/ });
  await missing.close();

  writeFileSync(path.join(storage, 'htpasswd'), `alice:${hash('a-pass')}\n`);
  const good = buildMirror(t, { upstreams, storage, sections: { auth: { htpasswd: 'htpasswd', groups: { devs: ['alice'] } } } });
  await good.start();
  t.same(await good.app.credentials.verify('alice', 'a-pass', '127.0.0.1'), { subject: 'alice', kind: 'user', method: 'basic', groups: ['devs'] });
  await good.app.credentials.tokens.create({ name: 'ci' });
  await good.close();

  const file = path.join(storage, 'auth', 'tokens.json');
  writeFileSync(file, '{"version":1,"tokens":[{"name":"ci"}]}');
  const damaged = buildMirror(t, { upstreams, storage });
  await t.rejects(damaged.start(), { name: 'TokenFileError', message: /robot token file .* token 1 has no valid sha256/ });
  await damaged.close();
});
