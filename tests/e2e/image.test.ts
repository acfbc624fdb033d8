import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { baseImageTar, debianSources } from '../fixtures/base-image.js';
import { mustRun, runCommand, startDockerd, tempDir, type Dockerd } from '../fixtures/daemons.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { until } from '../fixtures/poll.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { toolsMissing } from '../fixtures/tools.js';

// The repository's Dockerfile built for real (its own `npm ci`, from this checkout) on a base made by
// scripts/base-image.sh, then run as the chart runs it: uid 10001, read-only root filesystem, the
// config mounted read-only, the cache and /tmp the only writable places.
const ROOT = path.resolve(import.meta.dirname, '../..');
const UID = 10001;
const tools = toolsMissing(['mmdebstrap', 'dockerd', 'docker', 'skopeo']);
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const skip =
  tools.skip ||
  (process.getuid?.() !== 0 ? 'needs root (mmdebstrap, dockerd)' : false) ||
  (debianSources().length === 0 ? 'no apt source for Debian bookworm on this host to make the base image from' : false) ||
  (major < 20 || (major === 20 && minor < 18) ? `Node ${process.version} is older than the image's 20.18` : false);
if (skip && tools.required) t.fail(`e2e image: ${skip}`);
// The whole file, told to the runner (its per-file default is 120 s): cold, the base (mmdebstrap)
// and two `npm ci` over the network; the base is cached across runs, the build never is.
t.setTimeout(1_200_000);

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(0)} s`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function inspect<T>(d: Dockerd, kind: 'image' | 'container', id: string, format: string): Promise<T> {
  return JSON.parse((await mustRun('docker', [kind, 'inspect', '--format', `{{json ${format}}}`, id], { env: d.env })).stdout) as T;
}

async function commitOf(): Promise<string> {
  const r = await runCommand('git', ['rev-parse', 'HEAD'], { cwd: ROOT });
  return r.code === 0 ? r.stdout.trim() : 'not-a-git-checkout';
}

t.test('the Dockerfile builds, and the image serves as the chart runs it', { skip }, async (t: Test) => {
  t.setTimeout(1_200_000);
  const started = performance.now();
  const base = await baseImageTar(debianSources(), 600_000);
  t.comment(`base image ${base.cached ? 'cached' : 'made by scripts/base-image.sh'} (${base.key}): ${seconds(started)}`);

  // overlay2: on vfs every build step copies the whole root filesystem (17 min against a few here).
  const d = await startDockerd(t, {}, { storageDriver: 'overlay2' });
  // A container on the host network makes dockerd bind-mount its netns at exec/netns/default and
  // leave it at exit: stopped first here, then unmounted, so the temp dir can go.
  t.teardown(async () => {
    await d.stop();
    const netns = path.join(d.dir, 'exec', 'netns', 'default');
    if (readFileSync('/proc/self/mounts', 'utf8').includes(` ${netns} `)) await mustRun('umount', [netns]);
  });
  const docker = (args: readonly string[], timeoutMs?: number) => runCommand('docker', args, { env: d.env, ...(timeoutMs ? { timeoutMs } : {}) });
  const baseRef = `regmirror-ci/node-base:${base.key}`;
  const baseId = (await mustRun('docker', ['import', '--change', 'CMD ["node"]', base.tar, baseRef], { env: d.env, timeoutMs: 300_000 })).stdout.trim();
  t.teardown(() => docker(['image', 'rm', '--force', baseId]));

  const commit = await commitOf();
  const registry = (await runCommand('npm', ['config', 'get', 'registry'])).stdout.trim();
  const dir = tempDir(t, 'rm-image-');
  const iidfile = path.join(dir, 'iid');
  const buildStarted = performance.now();
  // The classic builder: this dockerd has no BuildKit (no buildx), and nothing here needs it. Host
  // network, as this dockerd has no bridge: `npm ci` reaches the registry the host's npm uses.
  const build = await runCommand(
    'docker',
    ['build', '--network', 'host', '--iidfile', iidfile, '--build-arg', `NODE_IMAGE=${baseRef}`, '--build-arg', `COMMIT=${commit}`, '--build-arg', `NPM_CONFIG_REGISTRY=${registry}`, ROOT],
    { env: { ...d.env, DOCKER_BUILDKIT: '0' }, timeoutMs: 900_000 },
  );
  t.equal(build.code, 0, 'docker build', { stderr: build.stderr.slice(-4000), stdout: build.stdout.slice(-4000) });
  if (build.code !== 0) return;
  const imageId = readFileSync(iidfile, 'utf8').trim();
  t.teardown(() => docker(['image', 'rm', '--force', imageId]));
  t.comment(`docker build from this checkout: ${seconds(buildStarted)}`);
  t.match(build.stdout, /added \d+ packages/, 'npm ci ran in the build');

  const size = await inspect<number>(d, 'image', imageId, '.Size');
  const baseSize = await inspect<number>(d, 'image', baseId, '.Size');
  t.comment(`image size: ${(size / 1024 / 1024).toFixed(1)} MiB (${size} bytes); the base: ${(baseSize / 1024 / 1024).toFixed(1)} MiB`);
  t.ok(size > baseSize, 'the image is the base plus regmirror');
  t.equal(await inspect<string>(d, 'image', imageId, '.Config.User'), `${UID}:${UID}`, 'the image itself names the unprivileged user');

  const upstream = await startTestRegistry(t);
  const alpine = quickImage('image-test-alpine');
  const manifestDigest = upstream.pushImage('library/alpine', '3.20', alpine);
  const port = await freePort();
  const etc = path.join(dir, 'etc');
  const cache = path.join(dir, 'cache');
  mkdirSync(etc);
  mkdirSync(cache);
  // The chart's hostPath init container does the same: the cache is the mirror user's, nothing more.
  chownSync(cache, UID, UID);
  writeFileSync(
    path.join(etc, 'mirror.config.json'),
    JSON.stringify({
      listen: `127.0.0.1:${port}`,
      storage: { path: '/var/lib/regmirror', maxSize: '1GiB' },
      upstreams: { 'docker.io': { url: upstream.url } },
      defaultUpstream: 'docker.io',
      shutdownGrace: '5s',
    }),
  );
  // As the chart's pod: its securityContext (uid/gid 10001, read-only root, no capabilities, no
  // privilege escalation), the config directory read-only, the cache volume, and /tmp as an emptyDir.
  const run = await mustRun(
    'docker',
    [
      'run', '--detach', '--network', 'host', '--user', `${UID}:${UID}`, '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--volume', `${etc}:/etc/regmirror:ro`, '--volume', `${cache}:/var/lib/regmirror`, '--tmpfs', '/tmp:size=64m',
      imageId,
    ],
    { env: d.env },
  );
  const container = run.stdout.trim();
  t.teardown(() => docker(['rm', '--force', '--volumes', container]));
  const logs = async () => {
    const r = await docker(['logs', container]);
    return r.stdout + r.stderr;
  };

  const mirror = `127.0.0.1:${port}`;
  const ready = await until(
    'the mirror in the container to answer /readyz',
    () => fetch(`http://${mirror}/readyz`).then((r) => r.status, () => 0),
    (s) => s === 200,
    { timeoutMs: 60_000, intervalMs: 250, tries: 1000 },
  ).catch(async (err: Error) => {
    t.fail(err.message, { logs: await logs() });
    return 0;
  });
  if (ready !== 200) return;
  t.equal((await fetch(`http://${mirror}/healthz`)).status, 200, '/healthz');

  await t.test('skopeo pulls through the container', async (t) => {
    writeFileSync(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    writeFileSync(path.join(dir, 'empty.conf'), '');
    const out = path.join(dir, 'out');
    const copy = await runCommand('skopeo', [
      '--policy', path.join(dir, 'policy.json'), '--registries-conf', path.join(dir, 'empty.conf'), '--tmpdir', dir,
      'copy', '--src-tls-verify=false', `docker://${mirror}/library/alpine:3.20`, `dir:${out}`,
    ]);
    t.equal(copy.code, 0, 'skopeo copy', { stderr: copy.stderr });
    t.equal(sha256(readFileSync(path.join(out, 'manifest.json'))), manifestDigest, 'the upstream manifest, byte for byte');
    for (const blob of [alpine.config, ...alpine.layers]) {
      t.equal(sha256(readFileSync(path.join(out, blob.digest.slice('sha256:'.length)))), blob.digest, `blob ${blob.digest.slice(0, 19)}`);
    }
    t.equal(upstream.count({ kind: 'blob' }), alpine.layers.length + 1, 'fetched from the upstream through the mirror');
    t.ok(readdirSync(cache).length > 0, 'and kept on the cache volume');
  });

  await t.test('as uid 10001, on a read-only root filesystem', async (t) => {
    t.equal(await inspect<string>(d, 'container', container, '.Config.User'), `${UID}:${UID}`);
    t.equal(await inspect<boolean>(d, 'container', container, '.HostConfig.ReadonlyRootfs'), true);
    const pid = await inspect<number>(d, 'container', container, '.State.Pid');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    t.match(status, new RegExp(`^Uid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, 'm'), 'the server process runs as 10001 (real, effective, saved, fs)');
    t.match(status, new RegExp(`^Gid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, 'm'), 'in group 10001');
    t.match(status, /^CapEff:\s+0+$/m, 'with no capabilities');
    t.same(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 3), ['node', '/app/dist/cli/main.js', 'serve'], 'node itself is PID 1 of the container');
    for (const target of ['/app/x', '/etc/regmirror/x', '/x']) {
      const w = await docker(['exec', container, 'touch', target]);
      t.not(w.code, 0, `${target} cannot be written`);
      t.match(w.stderr, /Read-only file system/, `${target}: read-only`);
    }
    t.equal((await docker(['exec', container, 'touch', '/tmp/x'])).code, 0, '/tmp is writable (the chart mounts an emptyDir there)');
  });

  await t.test('regmirror --version reports the COMMIT build arg', async (t) => {
    const v = await docker(['exec', container, 'regmirror', '--version']);
    t.equal(v.code, 0, v.stderr);
    t.match(v.stdout, `(commit ${commit.slice(0, 12)},`, 'the commit, as --version shortens it');
    t.equal((await docker(['exec', container, 'cat', '/app/COMMIT'])).stdout.trim(), commit, 'all of it in /app/COMMIT');
    t.match(v.stdout, process.versions.node, 'on the base image\'s Node');
  });

  await t.test('SIGTERM stops it cleanly', async (t) => {
    const stop = await docker(['stop', '--time', '30', container], 60_000);
    t.equal(stop.code, 0, 'docker stop', { stderr: stop.stderr });
    t.has(await inspect<{ ExitCode: number; OOMKilled: boolean }>(d, 'container', container, '.State'), { ExitCode: 0, OOMKilled: false }, 'exit code 0, before docker stop\'s SIGKILL');
    const lines = (await logs()).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; signal?: string });
    t.ok(lines.some((l) => l.signal === 'SIGTERM' && l.msg?.startsWith('shutting down')), 'logs that SIGTERM started the shutdown');
    t.ok(lines.some((l) => l.msg === 'stopped'), 'and that it stopped');
  });
});
