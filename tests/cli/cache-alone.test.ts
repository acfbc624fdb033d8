import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { quickImage, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { blobFile, pull } from '../fixtures/cache-cli.js';
import { registerCacheCommands } from '../../src/cli/cache.js';
import { registerTokenCommands } from '../../src/cli/token.js';
import { CliError } from '../../src/cli/cli-error.js';
import { storageLayout } from '../../src/storage/layout.js';
import type { LsResult } from '../../src/admin/index.js';

// The `cache` and `token` commands in this process, holding the storage themselves (what a child
// process does in tests/cli/cache-ls.test.ts, here counted by coverage): --storage with no config
// file, a config whose passwordEnv is unset, and gc keeping pinned content a lost snapshot forgot.

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; error: unknown }> {
  const program = new Command('regmirror').exitOverride();
  registerCacheCommands(program);
  registerTokenCommands(program);
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  try {
    await program.parseAsync(args, { from: 'user' });
    return { stdout, stderr, error: undefined };
  } catch (error) {
    return { stdout, stderr, error };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

t.test('--storage alone, a config without its secrets, and gc after a lost snapshot', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-cache-alone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const storage = path.join(dir, 'data');
  const reg = await startTestRegistry(t);
  const [old, next] = ['alone-old', 'alone-new'].map((n) => quickImage(n)) as [Image, Image];
  const pin = ['docker.io/team/**'];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage, manifestTTL: '0', pin });
  reg.pushImage('team/app', 'v1', old);
  await pull(t, mirror.url, 'team/app', 'v1', old);
  reg.pushImage('team/app', 'v1', next);
  await pull(t, mirror.url, 'team/app', 'v1', next);
  await mirror.close();
  rmSync(storageLayout(storage).indexSnapshot);

  // Where the command runs there is no mirror.config.json: the storage is all there is.
  const elsewhere = path.join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  const cwd = process.cwd();
  process.chdir(elsewhere);
  t.teardown(() => process.chdir(cwd));

  const ls = await cli(['cache', 'ls', '--json', '--storage', storage]);
  t.equal(ls.error, undefined);
  const listed = JSON.parse(ls.stdout) as LsResult;
  t.same(listed.pinSources, ['pins.json']);
  t.match(listed.tags, [{ repository: 'team/app', tag: 'v1', digest: next.manifestDigest, complete: true, pinned: false, lastSynced: null }]);
  const human = await cli(['cache', 'ls', '--storage', storage]);
  t.match(human.stdout, /^docker\.io\/team\/app +v1 /m);
  t.match(human.stderr, /^PINNED shows pins\.json only/);

  for (const args of [['cache', 'gc'], ['cache', 'prune', '--repo', 'team/*']]) {
    const refused = await cli([...args, '--storage', storage]);
    t.type(refused.error, CliError, `${args.join(' ')}: refused`);
    t.match(refused.error, { exitCode: 2, message: /^cache (gc|prune): needs the config: storage\.pin and the sync entries decide what stays/ });
  }
  const token = await cli(['token', 'ls', '--storage', storage]);
  t.match(token.error, { exitCode: 2, message: 'token ls: needs the config: token read patterns name its upstreams (give --config FILE)' });
  const bare = path.join(dir, 'bare');
  mkdirSync(bare);
  const noLog = await cli(['cache', 'ls', '--storage', bare]);
  t.match(noLog.error, { exitCode: 2, message: /has no metadata log .*if its metadata is in Redis, give --config FILE$/ });
  t.notOk(existsSync(storageLayout(bare).metadataLog), 'and none was created');

  // The deployment's config, in a shell without the upstream's secret: gc runs, and keeps the
  // pinned old image no tag reaches though no snapshot says which repository holds it.
  const config = path.join(dir, 'mirror.config.json');
  const secret = 'REGMIRROR_TEST_UNSET_SECRET';
  delete process.env[secret];
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: reg.url, username: 'ci', passwordEnv: secret } }, storage: { path: storage, pin } }));
  const gc = await cli(['cache', 'gc', '--config', config]);
  t.equal(gc.error, undefined);
  t.match(gc.stdout, /^freed 0 blobs \(0 B\)/m);
  for (const d of [old.manifestDigest, old.config.digest, ...old.layers.map((l) => l.digest)]) t.ok(existsSync(blobFile(storage, d)), `pinned ${d.slice(0, 19)} stays`);
  const pinnedNow = JSON.parse((await cli(['cache', 'ls', '--json', '--config', config])).stdout) as LsResult;
  t.match(pinnedNow.tags, [{ pinned: true }]);
  t.same(pinnedNow.pinSources, ['storage.pin', 'sync entries', 'pins.json']);
});
