import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startContainerd, tempDir, writeHostsToml, type Containerd } from '../fixtures/daemons.js';
import { SECOND, startE2eWorld } from '../fixtures/e2e-world.js';
import { toolsMissing } from '../fixtures/tools.js';

// containerd (what every kubelet pulls with) through regmirror as a hosts.toml mirror: it resolves
// with HEAD and appends ?ns=<registry> to every request, which is how the mirror picks the upstream.
const tools = toolsMissing(['containerd', 'ctr', 'docker-registry']);
if (tools.skip && tools.required) t.fail(`e2e containerd: ${tools.skip}`);

/** The hosts.toml the README documents: the mirror first, the registry itself as the fallback. */
function hostsToml(server: string, mirrorUrl: string): string {
  return `server = "${server}"\n\n[host."${mirrorUrl}"]\n  capabilities = ["pull", "resolve"]\n`;
}

async function contentDigests(c: Containerd): Promise<string[]> {
  const r = await c.ctr(['content', 'ls', '-q']);
  return r.stdout.split('\n').filter((l) => l.startsWith('sha256:'));
}

t.test('containerd pulls through regmirror from a real registry', { skip: tools.skip }, async (t) => {
  t.setTimeout(300_000);
  const world = await startE2eWorld(t);
  const { mirror, images } = world;
  const hosts = tempDir(t, 'rm-certs.d-');
  writeHostsToml(hosts, 'docker.io', hostsToml('https://registry-1.docker.io', mirror.url));
  writeHostsToml(hosts, SECOND, hostsToml(`https://${SECOND}`, mirror.url));
  // containerd moves on to the next host after a 404, so "not found" is only deterministic when
  // the mirror is the only host (the Docker Hub fallback answers differently with and without a network).
  const mirrorOnly = tempDir(t, 'rm-certs.d-');
  writeHostsToml(mirrorOnly, 'docker.io', hostsToml(mirror.url, mirror.url));

  const pull = async (t: Test, c: Containerd, ref: string, expected: string, extra: string[] = []) => {
    const r = await c.ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', ...extra, ref]);
    t.equal(r.code, 0, `ctr images pull ${[...extra, ref].join(' ')}`, { stderr: r.stderr });
    t.equal(await c.imageDigest(ref), expected, `${ref} has the upstream digest`);
  };

  await t.test('cold pulls', async (t) => {
    const c = await startContainerd(t);
    await pull(t, c, 'docker.io/library/alpine:3.20', images.alpine.manifestDigest);
    t.equal(world.hub.front.blobGets(), images.alpine.layers.length + 1, 'the mirror fetched config and layers from the upstream');
    await pull(t, c, 'docker.io/library/tags:1.1', images.tags['1.1']?.manifestDigest ?? '');
    await pull(t, c, 'docker.io/library/tags:2.0', images.tags['2.0']?.manifestDigest ?? '');

    await pull(t, c, 'docker.io/library/multiarch:1', images.multi.manifestDigest, ['--platform', 'linux/arm64']);
    const content = await contentDigests(c);
    t.ok(content.includes(images.arm64.manifestDigest) && content.includes(images.arm64.config.digest), 'the arm64 image was fetched');
    t.notOk(content.includes(images.amd64.manifestDigest), 'the amd64 one was not');

    await pull(t, c, 'docker.io/library/big:1', images.big.manifestDigest);
    t.ok((await contentDigests(c)).includes(images.big.layers[0]?.digest ?? ''), 'the >200 MiB layer is in the content store');

    await pull(t, c, `${SECOND}/team/app:1.0.0`, images.app.manifestDigest);
    t.equal(world.second.front.blobGets(), images.app.layers.length + 1, 'served by the second upstream');
    const routed = mirror.logs.filter((l) => l.includes('"upstream":"registry.test"') && l.includes('"repository":"team/app"'));
    t.ok(routed.length >= 3, `?ns=${SECOND} routed the requests to the second upstream`);

    const missing = await c.ctr(['images', 'pull', '--hosts-dir', mirrorOnly, 'docker.io/library/alpine:nope']);
    t.not(missing.code, 0, 'a missing tag fails');
    t.notOk(missing.timedOut, 'without hanging');
    t.match(missing.stderr, /docker\.io\/library\/alpine:nope: not found/, 'as containerd reports not found');
  });

  await t.test('a fresh containerd pulls again without a blob reaching the upstream', async (t) => {
    const blobGets = world.blobGets();
    const c = await startContainerd(t);
    await pull(t, c, 'docker.io/library/alpine:3.20', images.alpine.manifestDigest);
    await pull(t, c, 'docker.io/library/multiarch:1', images.multi.manifestDigest, ['--platform', 'linux/arm64']);
    await pull(t, c, 'docker.io/library/big:1', images.big.manifestDigest);
    await pull(t, c, `${SECOND}/team/app:1.0.0`, images.app.manifestDigest);
    t.equal(world.blobGets(), blobGets, 'no blob GET reached either upstream');
  });

  await t.test('with the upstreams stopped, pulled tags still pull', async (t) => {
    await world.stopUpstreams();
    await sleep(1100); // past manifestTTL: the mirror must try the upstream and fall back to its copy
    const c = await startContainerd(t);
    await pull(t, c, 'docker.io/library/alpine:3.20', images.alpine.manifestDigest);
    await pull(t, c, `${SECOND}/team/app:1.0.0`, images.app.manifestDigest);
    t.ok(world.servedStale('library/alpine', '3.20'), 'the mirror tried the upstream and served its cached manifest');
    t.ok(world.servedStale('team/app', '1.0.0'), 'for the second upstream too');
  });
});
