import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { freshPodman, podmanConfig, type Podman } from '../fixtures/podman.js';
import { BIG_LAYER_BYTES, SECOND, startE2eWorld } from '../fixtures/e2e-world.js';
import { toolsMissing } from '../fixtures/tools.js';

// podman through regmirror as a registries.conf mirror of docker.io, and of the second registry
// through a mirror location with the upstream's name as path prefix.
const tools = toolsMissing(['podman', 'docker-registry']);
if (tools.skip && tools.required) t.fail(`e2e podman: ${tools.skip}`);

/** The registries.conf the README documents, for docker.io and the second registry. */
function registriesConf(mirrorHost: string): string {
  return [
    '[[registry]]',
    'prefix = "docker.io"',
    'location = "docker.io"',
    '',
    '[[registry.mirror]]',
    `location = "${mirrorHost}"`,
    'insecure = true',
    '',
    '[[registry]]',
    `prefix = "${SECOND}"`,
    `location = "${SECOND}"`,
    '',
    '[[registry.mirror]]',
    `location = "${mirrorHost}/${SECOND}"`,
    'insecure = true',
    '',
  ].join('\n');
}

interface Inspected {
  Id: string;
  Digest: string;
  Architecture: string;
  Size: number;
}

t.test('podman pulls through regmirror from a real registry', { skip: tools.skip }, async (t) => {
  t.setTimeout(300_000);
  const world = await startE2eWorld(t);
  const { mirror, images } = world;
  const { dir: configDir, policy } = podmanConfig(t, registriesConf(mirror.host));

  const pull = async (t: Test, podman: Podman, ref: string, extra: string[] = []): Promise<Inspected | undefined> => {
    const r = await podman(['pull', '--signature-policy', policy, ...extra, ref]);
    t.equal(r.code, 0, `podman pull ${[...extra, ref].join(' ')}`, { stderr: r.stderr });
    const i = await podman(['image', 'inspect', ref]);
    return i.code === 0 ? (JSON.parse(i.stdout) as Inspected[])[0] : undefined;
  };
  const hex = (digest: string) => digest.slice('sha256:'.length);

  await t.test('cold pulls', async (t) => {
    const podman = freshPodman(t, configDir);
    const alpine = await pull(t, podman, 'docker.io/library/alpine:3.20');
    t.equal(alpine?.Digest, images.alpine.manifestDigest, 'the upstream manifest digest');
    t.equal(alpine?.Id, hex(images.alpine.config.digest), 'the image is the upstream config');
    t.equal(world.hub.front.blobGets(), images.alpine.layers.length + 1, 'the mirror fetched config and layers from the upstream');

    t.equal((await pull(t, podman, 'docker.io/library/tags:1.0'))?.Digest, images.tags['1.0']?.manifestDigest, 'tags:1.0');
    t.equal((await pull(t, podman, 'docker.io/library/tags:2.0'))?.Digest, images.tags['2.0']?.manifestDigest, 'tags:2.0');

    const multi = await pull(t, podman, 'docker.io/library/multiarch:1', ['--platform', 'linux/arm64']);
    t.equal(multi?.Architecture, 'arm64', 'the index resolved to the asked platform');
    t.equal(multi?.Id, hex(images.arm64.config.digest), 'the arm64 image');
    t.notOk(world.hub.front.requests.some((r) => r.target.includes(images.amd64.manifestDigest)), 'the other platform was never fetched');

    const big = await pull(t, podman, 'docker.io/library/big:1');
    t.equal(big?.Digest, images.big.manifestDigest, 'the >200 MiB image arrived');
    t.ok((big?.Size ?? 0) > BIG_LAYER_BYTES, 'and was unpacked');

    const app = await pull(t, podman, `${SECOND}/team/app:1.0.0`);
    t.equal(app?.Digest, images.app.manifestDigest, 'second upstream through a mirror location with a path prefix');
    t.equal(world.second.front.blobGets(), images.app.layers.length + 1, 'served by the second upstream');

    // podman tries the primary location after its mirrors; that part of the message depends on the
    // network, the mirror's part must say "manifest unknown".
    const missing = await podman(['pull', '--signature-policy', policy, 'docker.io/library/alpine:nope']);
    t.not(missing.code, 0, 'a missing tag fails');
    t.notOk(missing.timedOut, 'without hanging');
    t.match(missing.stderr, new RegExp(`Mirrors also failed: \\[${mirror.host}/library/alpine:nope: [^\\]]*manifest unknown`), 'as podman reports not found');
  });

  await t.test('fresh storage pulls again without a blob reaching the upstream', async (t) => {
    const blobGets = world.blobGets();
    const podman = freshPodman(t, configDir);
    t.equal((await pull(t, podman, 'docker.io/library/alpine:3.20'))?.Digest, images.alpine.manifestDigest, 'alpine');
    t.equal((await pull(t, podman, 'docker.io/library/multiarch:1', ['--platform', 'linux/arm64']))?.Id, hex(images.arm64.config.digest), 'arm64');
    t.equal((await pull(t, podman, 'docker.io/library/big:1'))?.Digest, images.big.manifestDigest, 'big');
    t.equal((await pull(t, podman, `${SECOND}/team/app:1.0.0`))?.Digest, images.app.manifestDigest, 'second upstream');
    t.equal(world.blobGets(), blobGets, 'no blob GET reached either upstream');
  });

  await t.test('with the upstreams stopped, pulled tags still pull', async (t) => {
    await world.stopUpstreams();
    await sleep(1100); // past manifestTTL: the mirror must try the upstream and fall back to its copy
    const podman = freshPodman(t, configDir);
    t.equal((await pull(t, podman, 'docker.io/library/alpine:3.20'))?.Digest, images.alpine.manifestDigest, 'alpine');
    t.equal((await pull(t, podman, `${SECOND}/team/app:1.0.0`))?.Digest, images.app.manifestDigest, 'second upstream');
    t.ok(world.servedStale('library/alpine', '3.20'), 'the mirror tried the upstream and served its cached manifest');
    t.ok(world.servedStale('team/app', '1.0.0'), 'for the second upstream too');
  });
});
