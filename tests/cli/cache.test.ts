import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quickImage, sha256, type Image } from '../fixtures/images.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { snapshotTree } from '../fixtures/cache.js';
import { regmirror, startServe } from '../fixtures/regmirror-process.js';
import { storageLayout } from '../../src/storage/layout.js';

// Every cache command as a real child process on a store filled by real pulls, once with nobody
// else on the storage (the CLI takes it) and once beside a running `serve` (the CLI asks it).

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };

async function pull(t: Test, url: string, repo: string, tag: string, image: Image): Promise<void> {
  const m = await request(`${url}/v2/${repo}/manifests/${tag}`, { headers: ACCEPT });
  t.equal(m.status, 200, `pulled ${repo}:${tag}`);
  for (const blob of [image.config, ...image.layers]) {
    const b = await request(`${url}/v2/${repo}/blobs/${blob.digest}`);
    t.equal(sha256(b.body), blob.digest);
  }
}

function blobFile(storage: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(storageLayout(storage).blobsDir, 'sha256', hex.slice(0, 2), hex);
}

interface Lsed {
  tags: Array<{ upstream: string; repository: string; tag: string; digest: string; cachedBytes: number; lastPulled: number }>;
}

async function ls(t: Test, base: string[]): Promise<Lsed> {
  const r = await regmirror(['cache', 'ls', '--json', ...base]);
  t.equal(r.code, 0, `cache ls: ${r.stderr}`);
  return JSON.parse(r.stdout) as Lsed;
}

/** Pulls through a mirror: the running serve, or (alone) an in-process one opened and closed around it. */
type Puller = (fn: (url: string) => Promise<void>) => Promise<void>;

function world(t: Test): { reg: Promise<TestRegistry>; storage: string; config: (regUrl: string, pin?: string[]) => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const storage = path.join(dir, 'data');
  return {
    reg: startTestRegistry(t),
    storage,
    config: (regUrl, pin) => {
      const file = path.join(dir, 'mirror.config.json');
      // manifestTTL 0: every pull by tag revalidates, so a tag moved upstream moves here at once.
      writeFileSync(
        file,
        JSON.stringify({ upstreams: { 'docker.io': { url: regUrl } }, storage: { path: storage, ...(pin ? { pin } : {}) }, manifestTTL: '0', log: { level: 'warn' } }),
      );
      return file;
    },
  };
}

async function scenario(t: Test, mode: 'alone' | 'beside serve'): Promise<void> {
  const w = world(t);
  const reg = await w.reg;
  const config = w.config(reg.url);
  const base = ['--config', config];
  const app1 = quickImage(`app-v1-${mode}`);
  const tool = quickImage(`tool-${mode}`);
  reg.pushImage('team/app', 'v1', app1);
  reg.pushImage('other/tool', 'latest', tool);

  let withMirror: Puller;
  let serveUrl: string | undefined;
  if (mode === 'beside serve') {
    const serve = await startServe(t, config);
    serveUrl = serve.url;
    withMirror = (fn) => fn(serve.url);
    const second = await regmirror(['serve', '--config', config, '--listen', '127.0.0.1:0']);
    t.equal(second.code, 1, 'a second serve on the same storage is refused');
    t.match(second.stderr, /^regmirror: cannot start: storage .* is in use by a running regmirror serve \(pid \d+\)\n$/);
  } else {
    withMirror = async (fn) => {
      const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage: w.storage, manifestTTL: '0' });
      try {
        await fn(mirror.url);
      } finally {
        await mirror.close();
      }
    };
  }
  await withMirror(async (url) => {
    await pull(t, url, 'team/app', 'v1', app1);
    await pull(t, url, 'other/tool', 'latest', tool);
  });

  t.test('ls', async (t) => {
    const listed = await ls(t, base);
    const sizeOf = (img: Image) => img.manifest.length + img.config.size + img.layers.reduce((s, l) => s + l.size, 0);
    t.same(
      listed.tags.map((e) => [e.upstream, e.repository, e.tag, e.digest, e.cachedBytes]),
      [
        ['docker.io', 'other/tool', 'latest', tool.manifestDigest, sizeOf(tool)],
        ['docker.io', 'team/app', 'v1', app1.manifestDigest, sizeOf(app1)],
      ],
    );
    t.ok(listed.tags.every((e) => Date.now() - e.lastPulled < 10 * 60_000), 'last pulled: just now');
    const human = await regmirror(['cache', 'ls', ...base]);
    t.equal(human.code, 0);
    t.match(human.stdout, /^REPOSITORY +TAG +DIGEST +SIZE +LAST PULLED\n/);
    t.match(human.stdout, new RegExp(`docker\\.io/team/app +v1 +${app1.manifestDigest.slice(0, 19)} `));
    t.match(human.stdout, /2 tags; 8 blob files/);
  });

  t.test('prune --dry-run changes nothing', async (t) => {
    const before = snapshotTree(w.storage, (n) => n === 'admin.sock');
    const r = await regmirror(['cache', 'prune', '--repo', 'team/*', '--dry-run', ...base]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /would prune docker\.io\/team\/app:v1/);
    t.match(r.stdout, /would free 4 blobs/);
    t.same(snapshotTree(w.storage, (n) => n === 'admin.sock'), before, 'every file as it was');
    t.equal((await ls(t, base)).tags.length, 2);
  });

  t.test('verify finds a corrupt blob, --fix deletes it, a later pull fetches it again', async (t) => {
    const layer = tool.layers[0];
    if (layer === undefined) throw new Error('no layer');
    const file = blobFile(w.storage, layer.digest);
    writeFileSync(file, Buffer.alloc(layer.size, 0x55));
    const found = await regmirror(['cache', 'verify', ...base]);
    t.equal(found.code, 1, 'exit 1: corruption found');
    t.match(found.stdout, `corrupt ${layer.digest}`);
    t.match(found.stdout, /checked 8 blobs .*: 1 corrupt \(run with --fix/);
    t.ok(existsSync(file), 'without --fix nothing is deleted');
    const fixed = await regmirror(['cache', 'verify', '--fix', ...base]);
    t.equal(fixed.code, 1, 'still exit 1: corruption was found');
    t.match(fixed.stdout, `corrupt ${layer.digest} (`);
    t.match(fixed.stdout, /1 corrupt, 1 deleted/);
    t.notOk(existsSync(file), 'the corrupt file is gone');
    const clean = await regmirror(['cache', 'verify', ...base]);
    t.equal(clean.code, 0);
    t.match(clean.stdout, /checked 7 blobs .*: all intact/);
    const gets = reg.count({ kind: 'blob', method: 'GET', pathIncludes: layer.digest });
    await withMirror(async (url) => {
      t.equal(sha256((await request(`${url}/v2/other/tool/blobs/${layer.digest}`)).body), layer.digest);
    });
    t.equal(reg.count({ kind: 'blob', method: 'GET', pathIncludes: layer.digest }), gets + 1, 'fetched again from upstream');
  });

  t.test('gc after a tag moved upstream frees what only the old image held', async (t) => {
    const app2 = quickImage(`app-v2-${mode}`);
    reg.pushImage('team/app', 'v1', app2);
    await withMirror((url) => pull(t, url, 'team/app', 'v1', app2));
    // A temp file a crash left an hour ago, and one as fresh as a download in flight.
    const tmp = storageLayout(w.storage).tmpDir;
    writeFileSync(path.join(tmp, 'dead.1'), Buffer.alloc(1000));
    utimesSync(path.join(tmp, 'dead.1'), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    writeFileSync(path.join(tmp, 'fresh.2'), Buffer.alloc(10));
    const r = await regmirror(['cache', 'gc', ...base]);
    t.equal(r.code, 0, r.stderr);
    t.notOk(existsSync(path.join(tmp, 'dead.1')), 'an old temp file is an orphan');
    if (mode === 'alone') {
      t.match(r.stdout, /2 temp files \(1010 B\)/);
      t.notOk(existsSync(path.join(tmp, 'fresh.2')), 'alone on the storage, every temp file is an orphan');
    } else {
      t.match(r.stdout, /1 temp files \(1000 B\)/);
      t.ok(existsSync(path.join(tmp, 'fresh.2')), 'beside serve, a fresh temp file may be a download in flight');
      rmSync(path.join(tmp, 'fresh.2'));
    }
    for (const d of [app1.manifestDigest, app1.config.digest, ...app1.layers.map((l) => l.digest)]) {
      t.match(r.stdout, `deleted ${d}`);
      t.notOk(existsSync(blobFile(w.storage, d)), `${d.slice(0, 19)} is gone`);
    }
    t.match(r.stdout, /freed 4 blobs/);
    for (const d of [app2.manifestDigest, ...app2.layers.map((l) => l.digest), tool.manifestDigest]) t.ok(existsSync(blobFile(w.storage, d)), 'referenced content stays');
    const again = await regmirror(['cache', 'gc', ...base]);
    t.match(again.stdout, /^freed 0 blobs \(0 B\), 0 metadata records, 0 temp files/);
    t.same((await ls(t, base)).tags.find((e) => e.repository === 'team/app')?.digest, app2.manifestDigest);
  });

  t.test('prune --repo drops the tags and collects their content; --older-than keeps fresh ones', async (t) => {
    const old = await regmirror(['cache', 'prune', '--older-than', '30d', ...base]);
    t.equal(old.code, 0, old.stderr);
    t.match(old.stdout, /pruned 0 tags/);
    const r = await regmirror(['cache', 'prune', '--repo', 'docker.io/other/**', ...base]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /pruned docker\.io\/other\/tool:latest/);
    t.match(r.stdout, /freed 4 blobs/);
    t.same((await ls(t, base)).tags.map((e) => e.repository), ['team/app']);
    if (serveUrl !== undefined) {
      // The running server itself dropped the tag (the CLI did not write its log behind its back).
      const heads = reg.count({ kind: 'manifest', pathIncludes: 'other/tool/manifests/latest' });
      t.equal((await request(`${serveUrl}/v2/other/tool/manifests/latest`, { headers: ACCEPT })).status, 200);
      t.equal(reg.count({ kind: 'manifest', pathIncludes: 'other/tool/manifests/latest' }), heads + 1, 'the server asks upstream again');
    }
  });
}

t.test('cache commands with the storage to themselves', (t) => scenario(t, 'alone'));
t.test('cache commands beside a running serve', (t) => scenario(t, 'beside serve'));

async function pinnedScenario(t: Test, mode: 'alone' | 'beside serve'): Promise<void> {
  const w = world(t);
  const reg = await w.reg;
  const pin = ['docker.io/team/**'];
  const config = w.config(reg.url, pin);
  const base = ['--config', config];
  const [pinnedOld, pinnedNew, freeOld, freeNew] = ['pinned-old', 'pinned-new', 'free-old', 'free-new'].map((n) => quickImage(`${n}-${mode}`)) as [Image, Image, Image, Image];
  let withMirror: Puller;
  if (mode === 'beside serve') {
    const serve = await startServe(t, config);
    withMirror = (fn) => fn(serve.url);
  } else {
    withMirror = async (fn) => {
      const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage: w.storage, manifestTTL: '0', pin });
      try {
        await fn(mirror.url);
      } finally {
        await mirror.close();
      }
    };
  }
  // Both tags move upstream: the old images are then reached by no tag, one of them in a pinned repository.
  for (const [repo, old, next] of [['team/app', pinnedOld, pinnedNew], ['other/tool', freeOld, freeNew]] as const) {
    reg.pushImage(repo, 'v1', old);
    await withMirror((url) => pull(t, url, repo, 'v1', old));
    reg.pushImage(repo, 'v1', next);
    await withMirror((url) => pull(t, url, repo, 'v1', next));
  }
  const digests = (img: Image) => [img.manifestDigest, img.config.digest, ...img.layers.map((l) => l.digest)];

  const gc = await regmirror(['cache', 'gc', '--json', ...base]);
  t.equal(gc.code, 0, gc.stderr);
  const deleted = (JSON.parse(gc.stdout) as { blobs: Array<{ digest: string }> }).blobs.map((b) => b.digest).sort();
  t.same(deleted, digests(freeOld).sort(), 'only the unpinned old image is collected');
  for (const d of digests(pinnedOld)) t.ok(existsSync(blobFile(w.storage, d)), `pinned ${d.slice(0, 19)} stays though no tag reaches it`);
  for (const d of digests(freeOld)) t.notOk(existsSync(blobFile(w.storage, d)), `unpinned ${d.slice(0, 19)} is gone`);
}

t.test('gc keeps pinned content no tag reaches, alone', (t) => pinnedScenario(t, 'alone'));
t.test('gc keeps pinned content no tag reaches, beside serve', (t) => pinnedScenario(t, 'beside serve'));

t.test('a serve killed with -9 leaves a dead socket; the next command and serve replace it', async (t) => {
  const w = world(t);
  const config = w.config((await w.reg).url);
  const serve = await startServe(t, config);
  process.kill(serve.daemon.pid, 'SIGKILL');
  await serve.daemon.stop(1000);
  t.ok(existsSync(storageLayout(w.storage).adminSocket), 'the socket file outlived its server');
  const r = await regmirror(['cache', 'ls', ...(['--config', config])]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /no cached tags/);
  const again = await startServe(t, config);
  t.equal((await request(`${again.url}/v2/`)).status, 200);
});

t.test('bad arguments: one line, exit 2', async (t) => {
  const w = world(t);
  const config = w.config('http://127.0.0.1:9');
  const cases: Array<[string[], RegExp]> = [
    [['cache', 'prune', '--config', config], /^regmirror: cache prune: give --older-than DURATION and\/or --repo PATTERN$/],
    [['cache', 'prune', '--older-than', 'soon', '--config', config], /^regmirror: cache prune: --older-than: "soon" is not a duration/],
    [['cache', 'prune', '--repo', '', '--config', config], /^regmirror: cache prune: --repo: the repository pattern is empty$/],
    [['cache', 'prune', '--repo', 'lib**', '--config', config], /^regmirror: cache prune: --repo: "\*\*" must be a whole segment in "lib\*\*"/],
    [['cache', 'ls', '--bogus', '--config', config], /^error: unknown option '--bogus'$/],
    [['cache', 'verify', '--fix=yes', '--config', config], /^error: /],
    [['cache', 'gc', '--config', path.join(os.tmpdir(), 'no-such-regmirror.json')], /^regmirror: config error: cannot read config file/],
    [['cache', 'shrink', '--config', config], /^error: unknown command 'shrink'/],
  ];
  for (const [args, line] of cases) {
    const r = await regmirror(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    t.match(r.stderr.trim(), line);
  }
  t.notOk(existsSync(w.storage), 'a refused command touched nothing');
  const nowhere = await regmirror(['cache', 'ls', '--config', config]);
  t.equal(nowhere.code, 1, 'a storage that does not exist is an error, not an empty cache');
  t.match(nowhere.stderr, /^regmirror: cache ls: storage .* does not exist\n$/);
  t.notOk(existsSync(w.storage), 'and is not created');
});
