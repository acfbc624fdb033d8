import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../fixtures/daemons.js';
import { request } from '../fixtures/http.js';
import { quickImage } from '../fixtures/images.js';
import { regmirror, regmirrorShellLine, startServe } from '../fixtures/regmirror-process.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';

// `regmirror export --output -` and `regmirror import -`: a tar through a pipe (`| ssh host …`,
// `kubectl exec -i … <`), as child processes joined by bash.

const UP = 'registry.test';
const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' };

interface Site {
  readonly reg: TestRegistry;
  readonly empty: TestRegistry;
  readonly dir: string;
  readonly connected: string;
  readonly disconnected: string;
  /** The disconnected side's storage, not created yet. */
  readonly storage: string;
}

async function setup(t: Test): Promise<Site> {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/a', '1', quickImage('stdio-a'));
  reg.pushImage('team/b', '1', quickImage('stdio-b'));
  const empty = await startTestRegistry(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-transfer-stdio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = (name: string, url: string) => {
    const file = path.join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ upstreams: { [UP]: { url } }, storage: { path: path.join(dir, name) }, manifestTTL: '24h', log: { level: 'warn' } }));
    return file;
  };
  return { reg, empty, dir, connected: config('connected', reg.url), disconnected: config('disconnected', empty.url), storage: path.join(dir, 'disconnected') };
}

/** `left | right` in bash; both exit codes, the right side's output, the left side's stderr. */
async function piped(left: string, right: string): Promise<{ codes: number[]; stdout: string; stderr: string; leftStderr: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-pipe-'));
  try {
    const errFile = path.join(dir, 'left.err');
    const r = await runCommand('bash', ['-c', `${left} 2>'${errFile}' | ${right}; echo "codes \${PIPESTATUS[0]} \${PIPESTATUS[1]}"`], { timeoutMs: 90_000 });
    const codes = /codes (\d+) (\d+)\n$/.exec(r.stdout);
    const leftStderr = existsSync(errFile) ? readFileSync(errFile, 'utf8') : '';
    return { codes: codes === null ? [] : [Number(codes[1]), Number(codes[2])], stdout: r.stdout.replace(/codes \d+ \d+\n$/, ''), stderr: r.stderr, leftStderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('export - | import -: the images arrive whole, the summary goes to stderr, no spool stays', async (t) => {
  const site = await setup(t);
  const exportLine = regmirrorShellLine(['export', '--config', site.connected, '--output', '-', `${UP}/team/a:1`, `${UP}/team/b:1`]);
  const r = await piped(exportLine, regmirrorShellLine(['import', '--config', site.disconnected, '-', '--pin']));
  t.same(r.codes, [0, 0], r.stderr + r.leftStderr);
  t.match(r.leftStderr, /2 images to stdout: 8 blobs written/, "the export's table is on stderr, out of the tar's way");
  t.match(r.stdout, /2 images imported: 8 blobs copied .*; pinned registry\.test\/team\/a, registry\.test\/team\/b\n$/);
  t.notOk(existsSync(path.join(site.storage, 'v1', 'incoming')), 'the spool and its directory are gone');

  // Beside a running serve, through its admin socket; --json on the export goes to stderr too.
  const serve = await startServe(t, site.disconnected);
  const again = await piped(
    regmirrorShellLine(['export', '--config', site.connected, '--output', '-', '--json', `${UP}/team/a:1`]),
    regmirrorShellLine(['import', '--config', site.disconnected, '-', '--json']),
  );
  t.same(again.codes, [0, 0], again.stderr + again.leftStderr);
  t.match(JSON.parse(again.leftStderr), { written: { blobs: 4 } });
  t.match(JSON.parse(again.stdout), { written: { blobs: 0 }, skipped: { blobs: 4 } });
  t.equal((await request(`${serve.url}/v2/team/b/manifests/1`, { headers: ACCEPT })).status, 200);
  t.equal(site.empty.count(), 0, 'the disconnected upstream was never asked');
  t.notOk(existsSync(path.join(site.storage, 'v1', 'incoming')), 'no spool stays beside a serve either');
});

t.test('bad input on stdin: exit 2, one line naming stdin, nothing created', async (t) => {
  const site = await setup(t);
  const importLine = regmirrorShellLine(['import', '--config', site.disconnected, '-']);
  const tarFile = path.join(site.dir, 'set.tar');
  const made = await regmirror(['export', '--config', site.connected, '--output', tarFile, `${UP}/team/a:1`]);
  t.equal(made.code, 0, made.stderr);
  const cases: Array<[string, RegExp]> = [
    [`printf 'not a tar'`, /^regmirror: import: stdin is not a tar archive \(9 bytes, less than one tar header\)\n$/],
    [`head -c 3000 '${tarFile}'`, /^regmirror: import: stdin is a truncated tar: it ends at byte 3000/],
    [`true`, /^regmirror: import: stdin is not a tar archive \(0 bytes/],
  ];
  for (const [feed, message] of cases) {
    const r = await piped(feed, importLine);
    t.equal(r.codes[1], 2, `${feed}: exit 2`);
    t.match(r.stderr, message);
    t.notOk(existsSync(site.storage), `${feed}: the storage was not even created`);
  }

  // A spool a killed import left (its process is gone) is removed by the next import -.
  mkdirSync(path.join(site.storage, 'v1', 'incoming'), { recursive: true });
  const gone = await runCommand('bash', ['-c', 'true & echo $!; wait']);
  const orphan = path.join(site.storage, 'v1', 'incoming', `stdin-${gone.stdout.trim()}-0123456789ab.tar`);
  writeFileSync(orphan, 'left by a killed import');
  const ok = await piped(`cat '${tarFile}'`, importLine);
  t.same(ok.codes, [0, 0], ok.stderr);
  t.notOk(existsSync(orphan), "the dead import's spool was removed");
  t.same(readdirSync(path.join(site.storage, 'v1', 'incoming')), [], 'and this one removed its own');

  // A terminal is refused on either end, before anything is read or written.
  const tty = async (args: string[]) => runCommand('script', ['-qec', regmirrorShellLine(args), '/dev/null'], { timeoutMs: 60_000 });
  const onTty = await tty(['export', '--config', site.connected, '--output', '-', `${UP}/team/a:1`]);
  t.equal(onTty.code, 2, onTty.stdout);
  t.match(onTty.stdout, /regmirror: export: --output - writes a tar to stdout, which is a terminal: pipe or redirect it/);
  const fromTty = await tty(['import', '--config', site.disconnected, '-']);
  t.equal(fromTty.code, 2, fromTty.stdout);
  t.match(fromTty.stdout, /regmirror: import: - reads a tar from stdin, which is a terminal/);
});

t.test('a blob that fails on the way cuts the stream: the import refuses it and changes nothing', async (t) => {
  const site = await setup(t);
  const bad = quickImage('stdio-bad');
  site.reg.pushImage('team/bad', '1', bad);
  site.reg.inject({ match: { kind: 'blob', pathIncludes: bad.layers[1]!.digest }, type: 'wrong-bytes', at: 'last' });
  const out = path.join(site.dir, 'cut.tar');
  const exported = await runCommand('bash', ['-c', `${regmirrorShellLine(['export', '--config', site.connected, '--output', '-', `${UP}/team/bad:1`, `${UP}/team/a:1`])} > '${out}'`]);
  t.equal(exported.code, 1, 'the export fails');
  t.match(exported.stderr, /error: registry\.test\/team\/bad:1: /);
  t.match(exported.stderr, /error: registry\.test\/team\/a:1: the output stream was cut by an earlier failure/, 'nothing is written after the cut');
  t.match(exported.stderr, /regmirror: export incomplete: 2 image\(s\) failed, so the tar on stdout ends without index\.json and its end marker: an import refuses it\n$/);
  const r = await piped(`cat '${out}'`, regmirrorShellLine(['import', '--config', site.disconnected, '-']));
  t.equal(r.codes[1], 2, r.stderr);
  t.match(r.stderr, /^regmirror: import: stdin is a truncated tar/);
  t.notOk(existsSync(site.storage), 'nothing of it reached a cache');
});
