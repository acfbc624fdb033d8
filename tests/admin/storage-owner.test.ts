import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { adminSocketPath, holdStorage, isLive, releaseStorage, tryHoldStorage } from '../../src/admin/index.js';

function tempRoot(t: { teardown(fn: () => void): void }, suffix = ''): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, suffix);
  mkdirSync(root, { recursive: true });
  return root;
}

function idle(): Server {
  return createServer((s) => s.destroy());
}

t.test('of many processes racing for one storage, exactly one holds it', async (t) => {
  const root = tempRoot(t);
  const servers = Array.from({ length: 8 }, idle);
  const results = await Promise.all(servers.map((s) => tryHoldStorage(root, s)));
  t.equal(results.filter((r) => r.held).length, 1, 'one holder');
  const socket = adminSocketPath(root);
  t.equal(statSync(socket).mode & 0o777, 0o600, 'only the owner may connect');
  t.ok(await isLive(socket));
  const holder = servers[results.findIndex((r) => r.held)] as Server;
  await releaseStorage(holder);
  t.notOk(existsSync(socket), 'released: the socket file is gone');
  const next = idle();
  t.ok((await tryHoldStorage(root, next)).held, 'free again after release');
  await releaseStorage(next);
});

t.test('a storage path longer than a socket address allows still works', async (t) => {
  const root = tempRoot(t, 'x'.repeat(60) + '/' + 'y'.repeat(60));
  t.ok(adminSocketPath(root).length > 108);
  const a = idle();
  t.ok((await tryHoldStorage(root, a)).held);
  t.notOk((await tryHoldStorage(root, idle())).held, 'a second one sees the holder');
  await releaseStorage(a);
  t.notOk(existsSync(adminSocketPath(root)));
});

t.test('holdStorage refuses a held storage, naming the holder as well as it can', async (t) => {
  const root = tempRoot(t);
  const first = idle();
  await holdStorage(root, first);
  t.teardown(() => releaseStorage(first));
  // An idle holder answers no /v1/owner: it is described generically.
  await t.rejects(holdStorage(root, idle()), { name: 'StorageError', message: /^storage .* is in use by another process$/ });
});
