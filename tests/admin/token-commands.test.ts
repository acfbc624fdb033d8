import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callAdmin, createAdminSocketServer, releaseStorage, TOKEN_COMMANDS, tryHoldStorage, UsageError, type AdminCommandSpec, type AdminRequest } from '../../src/admin/index.js';
import { InvalidCredentials, RobotTokens, type CreatedRobotToken, type RobotTokenInfo } from '../../src/auth/index.js';
import { startMirror } from '../fixtures/mirror.js';

// The token command table inside one process: the request a CLI would build, the admin socket of a
// running serve, the serve's own token store, and what a person sees. (tests/cli/token.test.ts runs
// the same commands as child processes.)

function spec(name: string): AdminCommandSpec<AdminRequest, unknown, RobotTokens> {
  const found = TOKEN_COMMANDS.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no token command ${name}`);
  return found;
}

t.test('create, ls and revoke through the admin socket of a running serve, which uses the change at once', async (t) => {
  t.same(TOKEN_COMMANDS.map((c) => c.name), ['create', 'ls', 'revoke']);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } } });
  const call = (body: unknown) => callAdmin(mirror.storage, 'POST', '/v1/token', body);

  const created = await call(spec('create').fromCli({ name: 'ci', read: ['docker.io/team/**'], expires: '30d' }));
  t.equal(created.status, 200);
  const ci = created.body as CreatedRobotToken;
  t.match(ci, { name: 'ci', read: ['docker.io/team/**'], expired: false });
  t.equal(spec('create').format(ci), ci.secret, 'people see the secret alone on stdout');
  t.match(spec('create').note?.(ci), /^robot token "ci" created; its secret \(above\) is not shown again\. Use it as the password with any user name, e.g\. `docker login <mirror> -u ci --password-stdin`\.$/);

  t.same(await mirror.app.credentials.verify('whoever', ci.secret, '127.0.0.1'), { subject: 'ci', kind: 'token', method: 'robot', groups: [] }, 'the server knows the token at once');
  t.ok(mirror.app.credentials.tokens.mayRead('ci', 'docker.io', 'team/app'));
  t.notOk(mirror.app.credentials.tokens.mayRead('ci', 'docker.io', 'library/alpine'));

  const ls = await call(spec('ls').fromCli({}));
  t.equal(ls.status, 200);
  const listed = (ls.body as { tokens: RobotTokenInfo[] }).tokens;
  t.equal(listed.length, 1);
  t.ok(listed[0]?.lastUsedAt !== undefined, 'the use just now is listed');
  t.notOk(JSON.stringify(ls.body).includes(ci.secret), 'ls never shows a secret');
  t.match(spec('ls').format(ls.body), /^NAME +READ +CREATED +EXPIRES +LAST USED\nci +docker\.io\/team\/\*\* +\d{4}-\d\d-\d\d \d\d:\d\dZ +\d{4}-.*Z +\d{4}-.*Z$/);

  t.equal((await call(spec('create').fromCli({ name: 'ci' }))).status, 422, 'a taken name');
  t.match((await call(spec('create').fromCli({ name: 'ci' }))).body, { error: /^a token named "ci" exists already/ });
  t.match(await call(spec('create').fromCli({ name: 'x', read: ['nowhere.example/a'] })), { status: 422, body: { error: /^--read: "nowhere\.example\/a" must start with a configured upstream/ } });
  t.equal((await call({ command: 'nope' })).status, 400);
  t.equal((await call({ command: 'create', name: 'x' })).status, 400, 'no read list: malformed');
  t.equal((await call({ command: 'create', name: 'x', read: [1] })).status, 400);
  t.equal((await call({ command: 'create', name: 'x', read: [], expiresInMs: '1d' })).status, 400);
  t.equal((await call({ command: 'revoke' })).status, 400);

  const revoked = await call(spec('revoke').fromCli({ name: 'ci' }));
  t.equal(revoked.status, 200);
  t.equal(spec('revoke').format(revoked.body), 'revoked robot token "ci"');
  await t.rejects(mirror.app.credentials.verify('whoever', ci.secret, '127.0.0.1'), InvalidCredentials, 'refused right after the revoke');
  t.match(await call(spec('revoke').fromCli({ name: 'ci' })), { status: 422, body: { error: 'no token named "ci"' } });
  t.equal(spec('ls').format((await call(spec('ls').fromCli({}))).body), 'no robot tokens');

  const kept = (await call(spec('create').fromCli({ name: 'nodes' }))).body as CreatedRobotToken;
  t.equal(spec('ls').format({ tokens: [{ ...kept, expiresAt: 0, expired: true }] }).split('\n')[1]?.replace(/ +/g, ' '), `nodes (rules) ${new Date(kept.createdAt).toISOString().slice(0, 16).replace('T', ' ')}Z 1970-01-01 00:00Z (expired) never`);
  await mirror.app.credentials.verify('n', kept.secret);
  await mirror.close();
  const file = readFileSync(path.join(mirror.storage, 'auth', 'tokens.json'), 'utf8');
  t.match(file, /"lastUsed": "\d{4}-/, 'closing wrote the last use');
  const disk = readdirSync(mirror.storage, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(path.join(e.parentPath, e.name)).toString('latin1'))
    .join('');
  t.notOk(disk.includes(ci.secret) || disk.includes(kept.secret), 'no secret anywhere in the storage');
});

t.test('CLI options become requests; bad ones are usage errors', async (t) => {
  t.same(spec('create').fromCli({ name: 'ci', read: [] }), { command: 'create', name: 'ci', read: [] });
  t.same(spec('create').fromCli({ name: 'ci', read: ['a/b'], expires: '12h' }), { command: 'create', name: 'ci', read: ['a/b'], expiresInMs: 12 * 3_600_000 });
  t.same(spec('revoke').fromCli({ name: 'ci' }), { command: 'revoke', name: 'ci' });
  for (const [name, options, message] of [
    ['create', {}, /^give --name NAME$/],
    ['create', { name: 'ci', expires: 'soon' }, /^--expires: "soon" is not a duration such as "30d"/],
    ['create', { name: 'ci', expires: '0' }, /^--expires: "0" is not a duration/],
    ['revoke', {}, /^give the NAME of the token$/],
  ] as const) {
    const err = t.throws(() => spec(name).fromCli(options)) as Error;
    t.ok(err instanceof UsageError);
    t.match(err.message, message);
  }
});

t.test('a CLI holding the storage answers token commands busy; a server failure is a 500', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rm-token-socket-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const holder = createAdminSocketServer({ kind: 'token', pid: 4242, command: 'token ls' }, undefined, () => {});
  t.ok((await tryHoldStorage(root, holder)).held);
  const busy = await callAdmin(root, 'POST', '/v1/token', { command: 'ls' });
  t.same(busy, { status: 409, body: { error: 'busy: regmirror token ls (pid 4242) holds the storage' } });
  await releaseStorage(holder);

  const errors: unknown[] = [];
  const broken = {
    list: () => {
      throw new Error('disk on fire');
    },
  } as unknown as RobotTokens;
  const server = createAdminSocketServer({ kind: 'serve', pid: 1, command: 'serve' }, undefined, (err) => errors.push(err), { tokens: broken });
  t.ok((await tryHoldStorage(root, server)).held);
  t.teardown(() => releaseStorage(server));
  t.match(await callAdmin(root, 'POST', '/v1/token', { command: 'ls' }), { status: 500, body: { error: 'disk on fire' } });
  t.equal(errors.length, 1, 'told to the server log');
});
