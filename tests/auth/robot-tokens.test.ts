import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RobotTokenError, RobotTokens, robotTokenFile, TokenFileError, type RobotTokensOptions } from '../../src/auth/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { until } from '../fixtures/poll.js';

// Robot tokens as the store keeps them: hashed on disk, checked in constant time, scoped, expiring,
// revoked at once, their use recorded without a write per pull.

const DAY = 86_400_000;

function world(t: Test, upstreams: Record<string, object> = { 'docker.io': { url: 'http://127.0.0.1:9', aliases: ['index.docker.io'] }, 'ghcr.io': { url: 'http://127.0.0.1:9' } }) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rm-tokens-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const config = parseConfig({ upstreams, defaultUpstream: 'docker.io', storage: { path: root } }, { baseDir: root, env: {} });
  const logs: string[] = [];
  let clock = Date.parse('2025-03-01T12:00:00Z');
  const make = (options: Partial<RobotTokensOptions> = {}) =>
    new RobotTokens({ storageRoot: root, upstreams: config.upstreams, logger: createLogger('debug', { write: (l: string) => void logs.push(l) }), now: () => clock, ...options });
  return {
    root,
    logs,
    make,
    advance: (ms: number) => void (clock += ms),
    now: () => clock,
  };
}

/** Every file under `dir`, as text. */
function allFiles(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(path.join(e.parentPath, e.name), 'utf8'))
    .join('\n');
}

t.test('create: a prefixed 256-bit secret, returned once, stored only as its SHA-256 in a 0600 file', async (t) => {
  const w = world(t);
  const tokens = w.make();
  await tokens.load();
  t.same(tokens.list(), [], 'no file yet is no tokens');
  const made = await tokens.create({ name: 'ci', read: ['docker.io/team/**'], expiresInMs: 30 * DAY });
  t.match(made.secret, /^rmt_[A-Za-z0-9_-]{43}$/);
  t.match(made, { name: 'ci', read: ['docker.io/team/**'], createdAt: w.now(), expiresAt: w.now() + 30 * DAY, lastUsedAt: undefined, expired: false });
  const file = robotTokenFile(w.root);
  t.equal(file, path.join(w.root, 'auth', 'tokens.json'));
  t.equal(statSync(file).mode & 0o777, 0o600, 'the file is the owner’s only');
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  const disk = allFiles(w.root);
  t.notOk(disk.includes(made.secret), 'the secret is nowhere in the storage');
  t.notOk(disk.includes(made.secret.slice(4)), 'not even without its prefix');
  t.ok(disk.includes(createHash('sha256').update(made.secret).digest('hex')), 'its hash is');
  t.same(readdirSync(path.dirname(file)), ['tokens.json'], 'no temp file left behind');
  const other = await tokens.create({ name: 'nodes' });
  t.not(other.secret, made.secret);
  t.notOk(allFiles(w.root).includes(made.secret) || allFiles(w.root).includes(other.secret));
  t.notMatch(w.logs.join(''), new RegExp(`${made.secret.slice(4)}|${other.secret.slice(4)}`), 'no secret in the log');
  t.match(w.logs.join(''), /"tokenName":"ci".*"msg":"robot token created"/);
});

t.test('verify: the secret of a live token is its identity, with any user name; anything else is nobody', async (t) => {
  const w = world(t);
  const tokens = w.make();
  await tokens.load();
  const ci = await tokens.create({ name: 'ci', expiresInMs: DAY });
  const forever = await tokens.create({ name: 'forever' });
  t.same(tokens.verify(ci.secret), { subject: 'ci', kind: 'token', method: 'robot', groups: [] });
  t.same(tokens.verify(forever.secret)?.subject, 'forever');
  const flipped = ci.secret.slice(0, -1) + (ci.secret.endsWith('A') ? 'B' : 'A');
  for (const wrong of [flipped, ci.secret.slice(4), `${ci.secret}x`, '', 'rmt_', ci.secret.toUpperCase()]) t.equal(tokens.verify(wrong), undefined, `refused: ${wrong.length} chars`);

  w.advance(DAY);
  t.equal(tokens.verify(ci.secret), undefined, 'expired');
  t.match(
    tokens.list().map((i) => [i.name, i.expired]),
    [
      ['ci', true],
      ['forever', false],
    ],
  );
  await tokens.revoke('forever');
  t.equal(tokens.verify(forever.secret), undefined, 'revoked: refused at once');
  t.same(
    tokens.list().map((i) => i.name),
    ['ci'],
  );
  const reloaded = w.make();
  await reloaded.load();
  t.equal(reloaded.verify(forever.secret), undefined, 'and after a restart');
  t.equal(reloaded.list()[0]?.expiresAt, ci.expiresAt);
});

t.test('refused as asked: bad or taken names, unknown tokens, bad patterns and expiries', async (t) => {
  const w = world(t);
  const tokens = w.make();
  await tokens.load();
  await tokens.create({ name: 'ci' });
  const cases: Array<[() => Promise<unknown>, RegExp]> = [
    [() => tokens.create({ name: 'ci' }), /^a token named "ci" exists already/],
    [() => tokens.create({ name: 'two words' }), /^"two words" is not a token name/],
    [() => tokens.create({ name: '-x' }), /is not a token name/],
    [() => tokens.create({ name: 'x'.repeat(65) }), /is not a token name/],
    [() => tokens.create({ name: 'x', read: ['quay.io/team/*'] }), /^--read: "quay.io\/team\/\*" must start with a configured upstream/],
    [() => tokens.create({ name: 'x', read: ['docker.io/team**'] }), /^--read: "\*\*" must be a whole segment/],
    [() => tokens.create({ name: 'x', read: ['docker.io'] }), /^--read: the repository pattern is empty/],
    [() => tokens.create({ name: 'x', expiresInMs: 0 }), /^the expiry must be a positive duration/],
    [() => tokens.revoke('nope'), /^no token named "nope"$/],
  ];
  for (const [fn, message] of cases) await t.rejects(fn(), { name: 'RobotTokenError', message }, message.source);
  t.same(
    tokens.list().map((i) => i.name),
    ['ci'],
    'nothing was changed',
  );
  const racing = await Promise.allSettled([tokens.create({ name: 'same' }), tokens.create({ name: 'same' })]);
  t.same(
    racing.map((r) => r.status),
    ['fulfilled', 'rejected'],
    'two creates of one name: one wins',
  );
  t.ok((racing[1] as PromiseRejectedResult).reason instanceof RobotTokenError);
});

t.test('read patterns: canonical, exposed for the policy, and matched by upstream and repository', async (t) => {
  const w = world(t);
  const tokens = w.make();
  await tokens.load();
  const made = await tokens.create({ name: 'team', read: ['index.docker.io/alpine', 'docker.io/team/**', 'ghcr.io/org/*'] });
  t.same(made.read, ['docker.io/library/alpine', 'docker.io/team/**', 'ghcr.io/org/*'], 'aliases and library/ resolved as pins are');
  await tokens.create({ name: 'any' });
  t.same(tokens.readPatterns('team'), [
    { upstream: 'docker.io', repository: 'library/alpine' },
    { upstream: 'docker.io', repository: 'team/**' },
    { upstream: 'ghcr.io', repository: 'org/*' },
  ]);
  t.equal(tokens.readPatterns('any'), undefined, 'no patterns of its own: the rules alone decide');
  t.same(tokens.readPatterns('ghost'), [], 'an unknown token reads nothing');
  const may = (name: string, upstream: string, repo: string) => tokens.mayRead(name, upstream, repo);
  t.ok(may('team', 'docker.io', 'library/alpine'));
  t.ok(may('team', 'docker.io', 'team/app/sub'));
  t.ok(may('team', 'ghcr.io', 'org/tool'));
  t.notOk(may('team', 'ghcr.io', 'org/tool/sub'), '* stays inside one segment');
  t.notOk(may('team', 'docker.io', 'library/nginx'));
  t.notOk(may('team', 'ghcr.io', 'team/app'), 'the upstream counts');
  t.ok(may('any', 'ghcr.io', 'whatever'), 'unrestricted');
  t.notOk(may('ghost', 'docker.io', 'library/alpine'), 'unknown');
  await tokens.create({ name: 'brief', expiresInMs: 1000 });
  w.advance(1000);
  t.notOk(may('brief', 'docker.io', 'library/alpine'), 'expired');
  await tokens.revoke('team');
  t.notOk(may('team', 'docker.io', 'library/alpine'), 'revoked');
});

t.test('a pattern whose upstream left the config grants nothing, and says so', async (t) => {
  const w = world(t);
  const before = w.make();
  await before.load();
  await before.create({ name: 'ci', read: ['ghcr.io/org/*', 'docker.io/team/*'] });
  const config = parseConfig({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: w.root } }, { baseDir: w.root, env: {} });
  const after = w.make({ upstreams: config.upstreams });
  await after.load();
  t.notOk(after.mayRead('ci', 'ghcr.io', 'org/tool'));
  t.ok(after.mayRead('ci', 'docker.io', 'team/app'));
  t.same(after.list()[0]?.read, ['ghcr.io/org/*', 'docker.io/team/*'], 'stored as created');
  t.match(w.logs.join(''), /"tokenName":"ci","pattern":"ghcr.io\/org\/\*".*robot token read pattern ignored/);
});

t.test('last use: recorded in memory at once, written at most once per flush period, and on close', async (t) => {
  const w = world(t);
  const tokens = w.make({ lastUsedFlushMs: 30 });
  await tokens.load();
  const ci = await tokens.create({ name: 'ci' });
  const stored = () => (JSON.parse(readFileSync(robotTokenFile(w.root), 'utf8')) as { tokens: Array<{ lastUsed: string | null }> }).tokens[0]?.lastUsed;
  const mtime = () => statSync(robotTokenFile(w.root)).mtimeMs;
  t.equal(stored(), null);
  for (let i = 0; i < 100; i++) tokens.verify(ci.secret);
  t.equal(tokens.list()[0]?.lastUsedAt, w.now(), 'ls sees the use at once');
  t.equal(stored(), null, 'not written per use');
  await until('the flush', stored, (v) => v === new Date(w.now()).toISOString());
  const written = mtime();
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(mtime(), written, 'no further write without a further use');

  w.advance(5000);
  const slow = w.make({ lastUsedFlushMs: 3_600_000 });
  await slow.load();
  slow.verify(ci.secret);
  t.equal(stored(), new Date(w.now() - 5000).toISOString(), 'pending');
  await slow.close();
  t.equal(stored(), new Date(w.now()).toISOString(), 'close writes what is pending');
  await slow.close();
});

t.test('a damaged token file stops the load: fail closed, never "no tokens"', async (t) => {
  const w = world(t);
  const file = robotTokenFile(w.root);
  const ok = w.make();
  await ok.load();
  const made = await ok.create({ name: 'ci', expiresInMs: DAY });
  const good = readFileSync(file, 'utf8');
  const entry = (JSON.parse(good) as { tokens: object[] }).tokens[0];
  const cases: Array<[string, RegExp]> = [
    ['{', /is not JSON/],
    ['{"version":2,"tokens":[]}', /is not a version 1 token file/],
    [JSON.stringify({ version: 1, tokens: [{ ...entry, name: '' }] }), /token 1 has no name/],
    [JSON.stringify({ version: 1, tokens: [{ ...entry, sha256: 'abc' }] }), /token 1 has no valid sha256/],
    [JSON.stringify({ version: 1, tokens: [{ ...entry, read: 'x' }] }), /token 1 has a bad read list/],
    [JSON.stringify({ version: 1, tokens: [{ ...entry, read: [1] }] }), /token 1 has a bad read list/],
    [JSON.stringify({ version: 1, tokens: [{ ...entry, created: 'yesterday' }] }), /token 1 has no valid creation time/],
  ];
  for (const [text, message] of cases) {
    writeFileSync(file, text);
    const err = await w.make().load().then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof TokenFileError, message.source);
    t.match((err as Error).message, message);
  }
  writeFileSync(file, good);
  const again = w.make();
  await again.load();
  t.equal(again.verify(made.secret)?.subject, 'ci', 'the good file loads');
  rmSync(path.dirname(file), { recursive: true });
  // The directory is a file: a write fails, the create fails, the list stays as it was.
  writeFileSync(path.dirname(file), 'not a directory');
  await t.rejects(again.create({ name: 'x' }), { code: /ENOTDIR|EEXIST/ });
  t.same(
    again.list().map((i) => i.name),
    ['ci'],
  );
  const unreadable = w.make();
  await t.rejects(unreadable.load(), { code: 'ENOTDIR' });
});
