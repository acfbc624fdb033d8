import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { doctorReport } from '../../src/cli/doctor.js';
import type { Output } from '../../src/cli/config-check.js';
import { currentUser, runDoctor } from '../../src/doctor/index.js';
import { IndexSnapshot } from '../../src/cache/index.js';
import { parseDigest } from '../../src/oci/index.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { regmirror as cli } from '../fixtures/regmirror-process.js';

// The operator's step: `regmirror doctor -c mirror.config.json` (or `serve --check`) before trusting a config.

function captured(): Output & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => void lines.push(l), err: (l) => void lines.push(l) };
}

/** An HTTP server that is not a registry: a web page at every path. */
async function webServer(t: Test): Promise<string> {
  const server = createServer((_req, res) => res.end('<html>hello</html>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function configFor(dir: string, upstreams: Record<string, unknown>, storage: Record<string, unknown> = {}) {
  const first = Object.keys(upstreams)[0];
  return parseConfig({ upstreams, defaultUpstream: first, storage: { path: 'cache', ...storage } }, { baseDir: dir, env: { PW: 'wrong' } });
}

t.test('doctor: a registry, a web page, a dead port, bad credentials, an offline upstream', async (t) => {
  const good = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  const locked = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  const basic = await startTestRegistry(t, { auth: { kind: 'basic', username: 'mirror', password: 'right' } });
  const basicBad = await startTestRegistry(t, { auth: { kind: 'basic', username: 'mirror', password: 'right' } });
  const web = await webServer(t);
  const dir = t.testdir({});
  const config = configFor(dir, {
    'good.local': { url: good.url, username: 'mirror', password: 'right' },
    'locked.local': { url: locked.url, username: 'mirror', passwordEnv: 'PW' },
    'basic.local': { url: basic.url, username: 'mirror', password: 'right' },
    'basicbad.local': { url: basicBad.url, username: 'mirror', passwordEnv: 'PW' },
    'web.local': { url: web },
    'dead.local': { url: 'http://127.0.0.1:9' },
    'air.local': {},
  });
  const output = captured();
  await t.rejects(doctorReport(config, output), { name: 'CliError', exitCode: 1, message: '4 of 13 checks failed' });
  const user = currentUser();
  t.same(output.lines, [
    `ok   upstream good.local: registry at ${good.url}/v2/ (answered 401)`,
    'ok   upstream good.local: credentials accepted (token issued)',
    `ok   upstream locked.local: registry at ${locked.url}/v2/ (answered 401)`,
    `FAIL upstream locked.local: credentials rejected: token realm ${locked.url}/token rejected the configured credentials (401) (check upstreams.locked.local username and password)`,
    `ok   upstream basic.local: registry at ${basic.url}/v2/ (answered 401)`,
    'ok   upstream basic.local: credentials accepted (Basic)',
    `ok   upstream basicbad.local: registry at ${basicBad.url}/v2/ (answered 401)`,
    `FAIL upstream basicbad.local: credentials rejected: GET ${basicBad.url}/v2/ with Basic credentials: 401 (check upstreams.basicbad.local username and password)`,
    `FAIL upstream web.local: not a registry: GET ${web}/v2/ answered 200 without Docker-Distribution-API-Version (check upstreams.web.local.url)`,
    'FAIL upstream dead.local: ECONNREFUSED connecting to http://127.0.0.1:9/v2/',
    'ok   upstream air.local: skipped (offline: never contacted)',
    `ok   storage ${path.join(dir, 'cache')}: writable by user ${user} (will be created)`,
    'ok   pins: 0 B pinned of storage.maxSize 20 GiB',
  ]);
});

t.test('doctor: no login needed, 503, 404, and credentials kept from a realm on another host', async (t) => {
  const open = await startTestRegistry(t);
  const failing = await startTestRegistry(t);
  const odd = await startTestRegistry(t);
  failing.inject({ match: { kind: 'base' }, type: 'status', status: 503 });
  odd.inject({ match: { kind: 'base' }, type: 'status', status: 404 });
  const bearer = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  // Reached as localhost, its realm names 127.0.0.1 over http: another host, so the password is kept back.
  const viaName = bearer.url.replace('127.0.0.1', 'localhost');
  const dir = t.testdir({});
  const lines = await runDoctor(
    configFor(dir, {
      'open.local': { url: open.url, username: 'mirror', password: 'x' },
      'failing.local': { url: failing.url },
      'odd.local': { url: odd.url },
      'name.local': { url: viaName, username: 'mirror', password: 'right' },
    }),
    { isPinned: () => false, user: () => 'mirror' },
  );
  t.same(lines.slice(0, 6), [
    { level: 'ok', what: `upstream open.local: registry at ${open.url}/v2/ (answered 200)` },
    { level: 'ok', what: 'upstream open.local: credentials not checked: it asks for no login' },
    { level: 'FAIL', what: `upstream failing.local: GET ${failing.url}/v2/ answered 503` },
    { level: 'warn', what: `upstream odd.local: GET ${odd.url}/v2/ answered 404` },
    { level: 'ok', what: `upstream name.local: registry at ${viaName}/v2/ (answered 401)` },
    { level: 'warn', what: `upstream name.local: credentials not sent to token realm ${bearer.url}/token: outside the upstream's domain or not https` },
  ]);
});

t.test('doctor: storage the user may not write names the directory and the user', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'regmirror-doctor-'));
  const ro = path.join(dir, 'ro');
  mkdirSync(ro);
  // Root writes through permission bits, not through the immutable flag (EPERM then).
  const root = process.getuid?.() === 0;
  if (root) execFileSync('chattr', ['+i', ro]);
  else chmodSync(ro, 0o555);
  t.teardown(() => {
    if (root) execFileSync('chattr', ['-i', ro]);
    rmSync(dir, { recursive: true, force: true });
  });
  const lines = await runDoctor(configFor(dir, { 'air.local': {} }, { path: 'ro' }), { isPinned: () => false, user: () => 'mirror' });
  t.same(lines[1], { level: 'FAIL', what: `storage ${ro}: not writable by user mirror (${root ? 'EPERM' : 'EACCES'})` });
});

t.test('doctor: a storage path under a file cannot be written, and pins over the budget fail', async (t) => {
  const dir = t.testdir({ file: 'x' });
  const lines = await runDoctor(configFor(dir, { 'air.local': {} }, { path: 'file/cache' }), { isPinned: () => false, user: () => 'mirror' });
  t.match(lines[1], { level: 'FAIL', what: `storage ${path.join(dir, 'file/cache')}: cannot write (ENOTDIR) (it does not exist, and its parent ${path.join(dir, 'file')} is not writable)` });

  const storage = path.join(dir, 'cache');
  mkdirSync(path.join(storage, 'v1'), { recursive: true });
  const digest = (c: string) => parseDigest(`sha256:${c.repeat(64)}`);
  await new IndexSnapshot(storage).save(
    [
      { digest: digest('a'), size: 8 * 2 ** 20, lastAccess: 1, repos: ['air.local/team/pinned'] },
      { digest: digest('b'), size: 3 * 2 ** 20, lastAccess: 1, repos: ['air.local/team/other'] },
    ],
    1,
  );
  const pinned = (key: string) => key === 'air.local/team/pinned';
  const over = await runDoctor(configFor(dir, { 'air.local': {} }, { maxSize: '4MiB' }), { isPinned: pinned, user: () => 'mirror' });
  t.same(over[2], { level: 'FAIL', what: 'pins: the pinned content already cached, 8 MiB, does not fit in storage.maxSize 4 MiB: raise storage.maxSize or narrow storage.pin' });
  const tight = await runDoctor(configFor(dir, { 'air.local': {} }, { maxSize: '9MiB' }), { isPinned: pinned, user: () => 'mirror' });
  t.same(tight[2], { level: 'warn', what: 'pins: 8 MiB pinned of storage.maxSize 9 MiB: little room left for anything else' });
  const decimal = await runDoctor(configFor(dir, { 'air.local': {} }, { maxSize: '100MB' }), { isPinned: pinned, user: () => 'mirror' });
  t.same(decimal[2], { level: 'ok', what: 'pins: 8.4 MB pinned of storage.maxSize 100 MB' }, 'in the units the operator wrote');
});

t.test('regmirror doctor and serve --check, as an operator runs them', async (t) => {
  const reg = await startTestRegistry(t);
  const dir = t.testdir({});
  const file = path.join(dir, 'mirror.config.json');
  writeFileSync(file, JSON.stringify({ upstreams: { 'docker.io': { url: reg.url } }, storage: { path: 'cache', maxSize: '10GiB' } }));
  for (const args of [['doctor', '-c', file], ['serve', '--check', '-c', file]]) {
    const run = await cli(args);
    t.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
    t.same(run.stdout.trim().split('\n'), [
      `ok   upstream docker.io: registry at ${reg.url}/v2/ (answered 200)`,
      `ok   storage ${path.join(dir, 'cache')}: writable by user ${currentUser()} (will be created)`,
      'ok   pins: 0 B pinned of storage.maxSize 10 GiB',
    ]);
  }
  writeFileSync(file, JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' } }));
  const dead = await cli(['doctor', '-c', file]);
  t.equal(dead.code, 1);
  t.match(dead.stdout, /^FAIL upstream docker\.io: ECONNREFUSED connecting to http:\/\/127\.0\.0\.1:9\/v2\/$/m);
  t.equal(dead.stderr, 'regmirror: 1 of 3 checks failed\n');
  writeFileSync(file, '{"upstreams": {}');
  t.equal((await cli(['doctor', '-c', file])).code, 2, 'a bad config is a usage error');
});
