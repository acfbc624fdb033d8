import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from '../fixtures/http.js';
import { quickImage } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { regmirror, startServe } from '../fixtures/regmirror-process.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { exportCommand } from '../../src/cli/export.js';
import { importCommand } from '../../src/cli/import.js';
import { CliError } from '../../src/cli/cli-error.js';

// `regmirror export` and `regmirror import` as child processes (exit codes, one-line errors, beside
// a running serve) and in this process (the same code, counted by coverage).

const UP = 'registry.test';
const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' };

function writeConfig(dir: string, name: string, regUrl: string, storage: string, extra: object = {}): string {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ upstreams: { [UP]: { url: regUrl } }, storage: { path: storage }, manifestTTL: '24h', log: { level: 'warn' }, ...extra }));
  return file;
}

/** Runs an in-process command with stdout captured (tap reads this process's stdout). */
async function captured(run: () => Promise<void>): Promise<{ stdout: string; error: unknown }> {
  const write = process.stdout.write.bind(process.stdout);
  let stdout = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await run();
    return { stdout, error: undefined };
  } catch (error) {
    return { stdout, error };
  } finally {
    process.stdout.write = write;
  }
}

async function setup(t: Test): Promise<{ reg: TestRegistry; empty: TestRegistry; dir: string }> {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/a', '1', quickImage('cli-a'));
  reg.pushImage('team/b', '1', quickImage('cli-b'));
  const empty = await startTestRegistry(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-transfer-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { reg, empty, dir };
}

t.test('export and import as commands: output, exit codes, one-line errors', async (t) => {
  const { reg, empty, dir } = await setup(t);
  const connected = writeConfig(dir, 'connected', reg.url, path.join(dir, 'connected'), { sync: [{ upstream: UP, repository: 'team/b', tags: ['1'] }] });
  const disconnected = writeConfig(dir, 'disconnected', empty.url, path.join(dir, 'disconnected'));
  const out = path.join(dir, 'set.tar');
  writeFileSync(path.join(dir, 'images.txt'), `# what the site needs\n${UP}/team/a:1\n\n`);

  const exported = await regmirror(['export', '--config', connected, '--output', out, '--images', path.join(dir, 'images.txt'), '--from-sync', '--json']);
  t.equal(exported.code, 0, exported.stderr);
  const result = JSON.parse(exported.stdout) as { summary: { images: { reference: string }[] } };
  t.same(result.summary.images.map((i) => i.reference), [`${UP}/team/a:1`, `${UP}/team/b:1`], '--images and --from-sync');
  t.ok(existsSync(out));

  // The rest of the bad arguments are checked in process below: the same code, without a child each.
  const bad: Array<[string[], RegExp]> = [
    [['export', '--config', connected, '--output', path.join(dir, 'x'), `${UP}/Team/A:1`], /^regmirror: export: "registry\.test\/Team\/A:1" is not a valid image reference/],
    [['export', '--config', connected, '--output', path.join(dir, 'x')], /^regmirror: export: name at least one IMAGE/],
    [['import', '--config', disconnected, path.join(dir, 'nope')], /^regmirror: import: .*nope: no such file or directory/],
  ];
  for (const [args, message] of bad) {
    const r = await regmirror(args);
    t.equal(r.code, 2, `${args.slice(0, 1).join(' ')}: exit 2 (${r.stderr.trim()})`);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.match(r.stderr, message);
  }
  t.notOk(existsSync(path.join(dir, 'disconnected')), 'a refused import did not even create the storage');

  const imported = await regmirror(['import', '--config', disconnected, out, '--pin']);
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stdout, /^IMAGE\s+DIGEST\s+COPIED\n/);
  t.match(imported.stdout, /2 images imported: 8 blobs copied \(.*\), 0 already cached \(0 B\); pinned registry\.test\/team\/a, registry\.test\/team\/b\n$/);
  t.ok(existsSync(path.join(dir, 'disconnected', 'v1', 'pins.json')), 'the pins are kept with the storage');

  // Beside a running serve the work goes through its admin socket, and the serve answers at once.
  const serve = await startServe(t, disconnected);
  const again = await regmirror(['import', '--config', disconnected, out, '--json']);
  t.equal(again.code, 0, again.stderr);
  t.match(JSON.parse(again.stdout), { written: { blobs: 0 }, skipped: { blobs: 8 } });
  const m = await request(`${serve.url}/v2/team/a/manifests/1`, { headers: ACCEPT });
  t.equal(m.status, 200);
  t.equal(empty.count(), 0, 'the disconnected upstream was never asked');
});

t.test('the same commands in this process, alone and beside a running mirror', async (t) => {
  const { reg, empty, dir } = await setup(t);
  const connected = writeConfig(dir, 'connected', reg.url, path.join(dir, 'connected'));
  const out = path.join(dir, 'set');
  const exported = await captured(() => exportCommand([`${UP}/team/a:1`, `${UP}/team/b:1`], { config: connected, output: out, platform: [] }));
  t.equal(exported.error, undefined);
  t.match(exported.stdout, /^IMAGE\s+DIGEST\s+PLATFORMS\s+SIZE\n/);
  t.match(exported.stdout, /2 images to .*: 8 blobs written/);
  const incremental = await captured(() => exportCommand([`${UP}/team/a:1`], { config: connected, output: path.join(dir, 'next.tar'), platform: ['linux/amd64'], since: out }));
  t.match(incremental.stdout, /1 blobs written \(.*\), 3 left out as the other side has them since /);
  const missing = await captured(() => exportCommand([`${UP}/team/zzz:1`], { config: connected, output: path.join(dir, 'failed'), platform: [] }));
  t.ok(missing.error instanceof CliError && missing.error.exitCode === 1, 'an image that cannot be exported: exit 1');
  t.match((missing.error as Error).message, /export incomplete: 1 image\(s\) failed/);
  t.match(missing.stdout, /error: registry\.test\/team\/zzz:1: /);

  const storage = path.join(dir, 'disconnected');
  mkdirSync(storage);
  const mirror = await startMirror(t, { upstreams: { [UP]: { url: empty.url } }, storage, manifestTTL: '24h' });
  const disconnected = writeConfig(dir, 'disconnected', empty.url, storage);
  const imported = await captured(() => importCommand(out, { config: disconnected, json: true }));
  t.equal(imported.error, undefined, 'imported through the running mirror');
  t.match(JSON.parse(imported.stdout), { kind: 'oci-layout', written: { blobs: 8 } });
  t.equal((await request(`${mirror.url}/v2/team/b/manifests/1`, { headers: ACCEPT })).status, 200);
  writeFileSync(path.join(dir, 'images.txt'), `${UP}/team/a:1\n`);
  const refused: Array<[() => Promise<void>, RegExp]> = [
    [() => importCommand(path.join(dir, 'nowhere'), { config: disconnected }), /^import: .*nowhere: no such file or directory$/],
    [() => importCommand(path.join(dir, 'images.txt'), { config: disconnected }), /^import: .*images\.txt is not a tar archive/],
    [() => exportCommand([`${UP}/team/a:1`], { config: connected, output: path.join(dir, 'x'), platform: ['linux'] }), /^export: --platform "linux" is not OS\/ARCH/],
    [() => exportCommand([`${UP}/team/a:1`], { config: connected, output: path.join(dir, 'x'), platform: [], since: path.join(dir, 'nope.json') }), /^export: --since .*: no regmirror-export\.json there/],
    [() => exportCommand([], { config: connected, output: path.join(dir, 'x'), platform: [], images: path.join(dir, 'nope.txt') }), /^export: --images .*: no such file/],
    [() => exportCommand([], { config: connected, output: dir, platform: [], images: path.join(dir, 'images.txt') }), /^export: .* is not empty and holds no OCI layout/],
    [() => exportCommand([], { config: connected, output: path.join(dir, 'x'), platform: [], fromSync: true }), /^export: --from-sync, but .* has no sync entries/],
  ];
  for (const [run, message] of refused) {
    const { error } = await captured(run);
    t.ok(error instanceof CliError && error.exitCode === 2, `exit 2: ${(error as Error | undefined)?.message ?? 'no error'}`);
    t.match((error as Error | undefined)?.message, message);
  }
  await mirror.close();
  const alone = await captured(() => importCommand(path.join(dir, 'next.tar'), { config: disconnected }));
  t.equal(alone.error, undefined, 'and alone, holding the storage itself');
  t.match(alone.stdout, /1 images imported: 0 blobs copied/);
});
