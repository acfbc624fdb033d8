import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { heldByAnotherUserMessage, storagePermissionMessage } from '../../src/cli/permission.js';
import { currentUser } from '../../src/doctor/index.js';
import { regmirror as cli } from '../fixtures/regmirror-process.js';

// The operator's step: serve (or a cache command) on a storage directory this user may not write.

function errno(code: string, extra: Record<string, unknown>): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: denied`), { code, ...extra });
}

t.test('permission errors name the storage and the user, never the socket inside it', async (t) => {
  const user = currentUser();
  t.equal(storagePermissionMessage(errno('EACCES', { path: '/srv/cache/v1' }), '/srv/cache'), `storage /srv/cache is not writable by user ${user} (EACCES)`);
  t.equal(storagePermissionMessage(errno('EACCES', { address: '/srv/cache/v1/admin.sock' }), '/srv/cache'), `storage /srv/cache is not writable by user ${user} (EACCES)`);
  t.equal(storagePermissionMessage(new Error('wrapped', { cause: errno('EROFS', { path: '/srv/cache' }) }), '/srv/cache'), 'storage /srv/cache is on a read-only file system (EROFS)');
  t.equal(storagePermissionMessage(errno('EACCES', { address: '0.0.0.0', port: 80 }), '/srv/cache'), undefined, 'a privileged port is not the storage');
  t.equal(storagePermissionMessage(errno('EACCES', { path: '/srv/cache-other/x' }), '/srv/cache'), undefined);
  t.equal(storagePermissionMessage(errno('ENOSPC', { path: '/srv/cache/x' }), '/srv/cache'), undefined);
  t.equal(
    heldByAnotherUserMessage(errno('EACCES', { address: '/srv/cache/v1/admin.sock' }), '/srv/cache'),
    `storage /srv/cache is in use by a server running as another user, and user ${user} may not reach it (EACCES): run this command as the user the server runs as`,
  );
  t.equal(heldByAnotherUserMessage(errno('ECONNRESET', {}), '/srv/cache'), undefined);
});

t.test('serve and cache ls on a storage this user may not write', { skip: process.getuid?.() === 0 ? false : 'needs root for chattr' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'regmirror-perm-'));
  const storage = path.join(dir, 'cache');
  mkdirSync(storage);
  execFileSync('chattr', ['+i', storage]);
  t.teardown(() => {
    execFileSync('chattr', ['-i', storage]);
    rmSync(dir, { recursive: true, force: true });
  });
  const file = path.join(dir, 'mirror.config.json');
  writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' }, log: { level: 'silent' } }));
  const serve = await cli(['serve', '-c', file]);
  t.equal(serve.code, 1);
  t.equal(serve.stderr, `regmirror: cannot start: storage ${storage} is not writable by user ${currentUser()} (EPERM)\n`);
  const ls = await cli(['cache', 'ls', '-c', file]);
  t.equal(ls.code, 1);
  t.equal(ls.stderr, `regmirror: cache ls: storage ${storage} is not writable by user ${currentUser()} (EPERM)\n`);
});
