import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { regmirror } from '../fixtures/regmirror-process.js';
import { listedStorage } from '../fixtures/cache-cli.js';

// `regmirror cache` where the operator has no config file or not its secrets (child processes),
// and what `cache prune` says of the pinned and synced tags it drops.

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
const DIGEST = 'sha256:[0-9a-f]{12}';

function tmp(t: Test, name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `rm-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('cache ls --storage alone, a config without its secrets, prune says what comes back', async (t) => {
  const { dir, storage, config, reg, base } = await listedStorage(t);
  // No config file where the command runs: the storage alone. pins.json is all it knows of pins.
  const elsewhere = tmp(t, 'no-config');
  const alone = await regmirror(['cache', 'ls', '--storage', storage], { cwd: elsewhere });
  t.equal(alone.code, 0, alone.stderr);
  t.match(alone.stdout, /^3 tags; /m);
  t.equal(alone.stderr, 'PINNED shows pins.json only: storage.pin and the sync entries are in the config (give --config FILE)\n');
  const gc = await regmirror(['cache', 'gc', '--storage', storage], { cwd: elsewhere });
  t.equal(gc.code, 2, 'gc without the pins would collect pinned content: refused');
  t.equal(gc.stderr, 'regmirror: cache gc: needs the config: storage.pin and the sync entries decide what stays (give --config FILE)\n');

  // The deployment's config, in a shell without its secrets.
  const withSecret = path.join(dir, 'with-secret.json');
  writeFileSync(withSecret, JSON.stringify({ ...base, upstreams: { 'docker.io': { url: reg.url, username: 'ci', passwordEnv: 'REGMIRROR_TEST_UNSET_SECRET' } } }));
  const noSecret = await regmirror(['cache', 'ls', 'other/**', '--config', withSecret], { env: { REGMIRROR_TEST_UNSET_SECRET: '' } });
  t.equal(noSecret.code, 0, noSecret.stderr);
  t.match(noSecret.stdout, /^docker\.io\/other\/tool +latest /m);

  const prune = await regmirror(['cache', 'prune', '--repo', '**', '--dry-run', '--config', config]);
  t.equal(prune.code, 0, prune.stderr);
  t.match(prune.stdout, new RegExp(`^would prune docker\\.io/other/tool:latest \\(${DIGEST}\\); pinned: its content stays while the pin does; synced ${ISO}: the next sync run brings it back$`, 'm'));
  t.match(prune.stdout, new RegExp(`^would prune docker\\.io/team/app:v1 \\(${DIGEST}\\); pinned: its content stays while the pin does$`, 'm'));
});
