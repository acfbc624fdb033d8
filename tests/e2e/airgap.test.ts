import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand, startContainerd, startDockerd, tempDir } from '../fixtures/daemons.js';
import { startDistribution } from '../fixtures/distribution.js';
import { request } from '../fixtures/http.js';
import { buildImage, buildIndex, buildLayer, sha256 } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { freshPodman, podmanConfig } from '../fixtures/podman.js';
import { pushImage, pushIndex } from '../fixtures/push.js';
import { regmirror } from '../fixtures/regmirror-process.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { toolsMissing } from '../fixtures/tools.js';

// Across the air gap with real clients: a connected mirror in front of the distribution registry
// exports a set with `regmirror export` (over its admin socket); the tar is loaded with
// `regmirror import` into a fresh mirror whose upstream is `offline: true` (its url names an empty
// registry that records every request, to prove nothing ever reaches it); docker, containerd,
// podman and skopeo then pull every image by tag and by digest.
const tools = toolsMissing(['dockerd', 'docker', 'ctr', 'containerd', 'podman', 'skopeo', 'docker-registry']);
if (tools.skip && tools.required) t.fail(`e2e airgap: ${tools.skip}`);
t.setTimeout(600_000);

const HUB = 'docker.io';

function buildSet() {
  const base = buildLayer({ 'etc/os-release': 'NAME="regmirror airgap"\n', 'bin/': '' });
  const alpine = buildImage({ layers: [base, buildLayer({ 'etc/motd': 'carried across the gap\n' })], format: 'docker' });
  const amd64 = buildImage({ layers: [buildLayer({ 'etc/arch': 'amd64\n' })], architecture: 'amd64' });
  const arm64 = buildImage({ layers: [buildLayer({ 'etc/arch': 'arm64\n' })], architecture: 'arm64' });
  const shared = buildLayer({ 'usr/share/shared.txt': 'one layer, two images\n' });
  const appA = buildImage({ layers: [shared, buildLayer({ 'etc/app': 'a\n' })], labels: { app: 'a' } });
  const appB = buildImage({ layers: [shared, buildLayer({ 'etc/app': 'b\n' })], labels: { app: 'b' } });
  const appA2 = buildImage({ layers: [shared, buildLayer({ 'etc/app': 'a2\n' })], labels: { app: 'a2' } });
  return { alpine, multi: buildIndex([amd64, arm64], 'oci'), amd64, arm64, appA, appB, appA2 };
}

t.test('an image set carried across the air gap pulls with the same digests', { skip: tools.skip }, async (t) => {
  const set = buildSet();
  const registry = await startDistribution(t);
  await Promise.all([
    pushImage(registry.url, 'library/alpine', '3.20', set.alpine),
    pushIndex(registry.url, 'library/multiarch', '1', set.multi),
    pushImage(registry.url, 'library/app-a', '1', set.appA),
    pushImage(registry.url, 'library/app-b', '1', set.appB),
  ]);
  const dir = tempDir(t, 'rm-airgap-');
  const connected = await startMirror(t, { upstreams: { [HUB]: { url: registry.url } } });
  const connectedConfig = path.join(dir, 'connected.json');
  writeFileSync(connectedConfig, JSON.stringify({ upstreams: { [HUB]: { url: registry.url } }, storage: { path: connected.storage } }));

  // What the other side pulls: [repository, tag, image digest].
  const pulls: Array<[string, string, string]> = [
    ['library/alpine', '3.20', set.alpine.manifestDigest],
    ['library/multiarch', '1', set.multi.manifestDigest],
    ['library/app-a', '1', set.appA.manifestDigest],
    ['library/app-b', '1', set.appB.manifestDigest],
  ];
  const refs = pulls.map(([repo, tag]) => `${HUB}/${repo}:${tag}`);
  /** How docker names a Hub image: `alpine`, not `library/alpine`. */
  const short = (repo: string) => repo.replace(/^library\//, '');
  const tarball = path.join(dir, 'set.tar');
  const exported = await regmirror(['export', '--config', connectedConfig, '--output', tarball, '--platform', 'linux/amd64', '--json', ...refs], { timeoutMs: 120_000 });
  t.equal(exported.code, 0, exported.stderr);
  const summary = (JSON.parse(exported.stdout) as { summary: { id: string; images: { reference: string; filtered: string[] }[] } }).summary;
  t.same(summary.images.find((i) => i.reference === refs[1])?.filtered, [set.arm64.manifestDigest], 'arm64 left out, recorded');
  const layoutDir = path.join(dir, 'layout');
  t.equal((await regmirror(['export', '--config', connectedConfig, '--output', layoutDir, '--platform', 'linux/amd64', ...refs])).code, 0, 'the same set as a directory');

  const empty = await startTestRegistry(t);
  const site = await startMirror(t, { upstreams: { [HUB]: { url: empty.url, offline: true } } });
  const siteConfig = path.join(dir, 'site.json');
  writeFileSync(siteConfig, JSON.stringify({ upstreams: { [HUB]: { url: empty.url, offline: true } }, storage: { path: site.storage } }));
  const imported = await regmirror(['import', '--config', siteConfig, tarball, '--pin'], { timeoutMs: 120_000 });
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stdout, /4 images imported: \d+ blobs copied/);

  await t.test('skopeo reads the export itself (oci:DIR:<ref>) and pulls from the site', async (t) => {
    const policy = path.join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    const skopeo = (args: string[]) => runCommand('skopeo', ['--policy', policy, '--tmpdir', dir, ...args]);
    const out = path.join(dir, 'from-layout');
    // skopeo's oci: transport looks only at entries with OCI media types (alpine here is Docker's).
    const fromLayout = await skopeo(['copy', `oci:${layoutDir}:${refs[2]!}`, `dir:${out}`]);
    t.equal(fromLayout.code, 0, fromLayout.stderr);
    t.equal(sha256(readFileSync(path.join(out, 'manifest.json'))), set.appA.manifestDigest, 'the export holds the upstream manifest byte for byte');
    const fromIndex = await skopeo(['--override-arch', 'amd64', 'copy', `oci:${layoutDir}:${refs[1]!}`, `dir:${out}-multi`]);
    t.equal(fromIndex.code, 0, fromIndex.stderr);
    t.equal(sha256(readFileSync(path.join(`${out}-multi`, 'manifest.json'))), set.amd64.manifestDigest, 'the filtered index resolves to the platform that travelled');
    for (const [repo, tag, digest] of pulls) {
      for (const ref of [`${repo}:${tag}`, `${repo}@${digest}`]) {
        const target = path.join(dir, `skopeo-${ref.replace(/[/:@]/g, '_')}`);
        const r = await skopeo(['copy', '--src-tls-verify=false', `docker://${site.host}/${ref}`, `dir:${target}`]);
        t.equal(r.code, 0, `skopeo copy ${ref}`, { stderr: r.stderr });
        const got = sha256(readFileSync(path.join(target, 'manifest.json')));
        t.ok(got === digest || got === set.amd64.manifestDigest, `${ref}: the upstream digest (or its amd64 child)`);
      }
    }
  });

  await t.test('docker pulls by tag and by digest through registry-mirrors', async (t) => {
    const d = await startDockerd(t, { 'registry-mirrors': [site.url] });
    for (const [repo, tag, digest] of pulls) {
      for (const ref of [`${short(repo)}:${tag}`, `${short(repo)}@${digest}`]) {
        const r = await d.docker(['pull', ref]);
        t.equal(r.code, 0, `docker pull ${ref}`, { stderr: r.stderr });
      }
      const inspected = JSON.parse((await d.docker(['image', 'inspect', `${short(repo)}:${tag}`])).stdout || '[]') as { RepoDigests?: string[] }[];
      t.same(inspected[0]?.RepoDigests, [`${short(repo)}@${digest}`], `${repo}:${tag}: the upstream digest`);
    }
  });

  await t.test('containerd pulls by tag and by digest through hosts.toml', async (t) => {
    const hosts = tempDir(t, 'rm-certs.d-');
    mkdirSync(path.join(hosts, HUB));
    writeFileSync(path.join(hosts, HUB, 'hosts.toml'), `server = "${site.url}"\n\n[host."${site.url}"]\n  capabilities = ["pull", "resolve"]\n`);
    const c = await startContainerd(t);
    for (const [repo, tag, digest] of pulls) {
      for (const ref of [`${HUB}/${repo}:${tag}`, `${HUB}/${repo}@${digest}`]) {
        const r = await c.ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', '--platform', 'linux/amd64', ref]);
        t.equal(r.code, 0, `ctr images pull ${ref}`, { stderr: r.stderr });
        const listed = (await c.ctr(['images', 'ls'])).stdout.split('\n').find((l) => l.startsWith(`${ref} `));
        t.equal(listed?.split(/\s+/)[2], digest, `${ref}: the upstream digest`);
      }
    }
  });

  await t.test('ctr import reads the tarball itself', async (t) => {
    const c = await startContainerd(t);
    const r = await c.ctr(['images', 'import', '--snapshotter', 'native', tarball]);
    t.equal(r.code, 0, r.stderr);
    const listed = (await c.ctr(['images', 'ls'])).stdout;
    for (const [repo, tag, digest] of pulls) t.match(listed, new RegExp(`^${HUB}/${repo}:${tag}\\s+\\S+\\s+${digest}`, 'm'), `${repo}:${tag} by its full name`);
  });

  await t.test('podman pulls by tag and by digest through registries.conf', async (t) => {
    const conf = podmanConfig(t, `[[registry]]\nprefix = "${HUB}"\nlocation = "${HUB}"\n\n[[registry.mirror]]\nlocation = "${site.host}"\ninsecure = true\n`);
    const podman = freshPodman(t, conf.dir);
    for (const [repo, tag, digest] of pulls) {
      for (const ref of [`${HUB}/${repo}:${tag}`, `${HUB}/${repo}@${digest}`]) {
        const r = await podman(['pull', '--signature-policy', conf.policy, ref]);
        t.equal(r.code, 0, `podman pull ${ref}`, { stderr: r.stderr });
      }
      const inspected = JSON.parse((await podman(['image', 'inspect', `${HUB}/${repo}:${tag}`])).stdout || '[]') as { Digest?: string }[];
      t.equal(inspected[0]?.Digest, digest, `${repo}:${tag}: the upstream digest`);
    }
  });

  await t.test('the site never asked its upstream for imported content; the left-out platform is 404', async (t) => {
    t.equal(empty.count(), 0, 'no request reached the site upstream');
    const arm = await request(`${site.url}/v2/library/multiarch/manifests/${set.arm64.manifestDigest}`, { headers: { accept: set.arm64.mediaType } });
    t.equal(arm.status, 404, 'the filtered-out platform answers 404');
  });

  await t.test('after one new tag, an incremental export carries only the new blobs', async (t) => {
    await pushImage(registry.url, 'library/app-a', '2', set.appA2);
    const next = path.join(dir, 'next.tar');
    const r = await regmirror(['export', '--config', connectedConfig, '--output', next, '--since', tarball, '--json', `${HUB}/library/app-a:2`]);
    t.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { summary: { since: { id: string }; carried: { digests: string[] } } };
    t.equal(result.summary.since.id, summary.id);
    t.same(result.summary.carried.digests.sort(), [set.appA2.manifestDigest, set.appA2.config.digest, set.appA2.layers[1]!.digest].sort(), 'manifest, config and the one new layer');
    const imported = await regmirror(['import', '--config', siteConfig, next]);
    t.equal(imported.code, 0, imported.stderr);
    const m = await request(`${site.url}/v2/library/app-a/manifests/2`, { headers: { accept: set.appA2.mediaType } });
    t.equal(sha256(m.body), set.appA2.manifestDigest, 'the new tag pulls on the site');
    for (const blob of [set.appA2.config, ...set.appA2.layers]) t.equal(sha256((await request(`${site.url}/v2/library/app-a/blobs/${blob.digest}`)).body), blob.digest);
  });
});
