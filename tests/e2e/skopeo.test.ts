import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sha256, type Image } from '../fixtures/images.js';
import { runCommand, tempDir, type CommandResult } from '../fixtures/daemons.js';
import { SECOND, startE2eWorld } from '../fixtures/e2e-world.js';
import { toolsMissing } from '../fixtures/tools.js';

// skopeo naming the mirror directly (docker://MIRROR/…), and through a registries.conf mirror.
const tools = toolsMissing(['skopeo', 'docker-registry']);
if (tools.skip && tools.required) t.fail(`e2e skopeo: ${tools.skip}`);

function fileDigest(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => hash.update(c))
      .on('end', () => resolve(`sha256:${hash.digest('hex')}`))
      .on('error', reject);
  });
}

t.test('skopeo copies through regmirror from a real registry', { skip: tools.skip }, async (t) => {
  t.setTimeout(240_000);
  const world = await startE2eWorld(t);
  const { mirror, images } = world;
  const dir = tempDir(t, 'rm-skopeo-');
  writeFileSync(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  writeFileSync(path.join(dir, 'empty.conf'), '');
  writeFileSync(
    path.join(dir, 'mirror.conf'),
    `[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${mirror.host}"\ninsecure = true\n`,
  );
  let outs = 0;
  const skopeo = (args: string[], registriesConf = 'empty.conf'): Promise<CommandResult> =>
    // skopeo ignores CONTAINERS_REGISTRIES_CONF (podman reads it, c/image does not): only the flag works.
    runCommand('skopeo', ['--policy', path.join(dir, 'policy.json'), '--registries-conf', path.join(dir, registriesConf), '--tmpdir', dir, ...args]);
  /** Copies `src` into a new dir: destination and returns that dir. */
  const copy = async (t: Test, src: string, opts: { all?: boolean; arch?: string; conf?: string } = {}): Promise<string> => {
    const out = path.join(dir, `out${++outs}`);
    const global = opts.arch === undefined ? [] : ['--override-arch', opts.arch];
    const r = await skopeo([...global, 'copy', '--src-tls-verify=false', ...(opts.all ? ['--all'] : []), src, `dir:${out}`], opts.conf);
    t.equal(r.code, 0, `skopeo copy ${src}`, { stderr: r.stderr });
    return out;
  };
  const manifestOf = (out: string) => sha256(readFileSync(path.join(out, 'manifest.json')));
  const verifyBlobs = async (t: Test, out: string, image: Image) => {
    for (const blob of [image.config, ...image.layers]) {
      t.equal(await fileDigest(path.join(out, blob.digest.slice('sha256:'.length))), blob.digest, `blob ${blob.digest.slice(0, 19)} verified`);
    }
  };

  await t.test('cold copies', async (t) => {
    const alpine = await copy(t, `docker://${mirror.host}/library/alpine:3.20`);
    t.equal(manifestOf(alpine), images.alpine.manifestDigest, 'the upstream manifest byte for byte');
    await verifyBlobs(t, alpine, images.alpine);
    t.equal(world.hub.front.blobGets(), images.alpine.layers.length + 1, 'config and layers fetched once each');

    const tags = await skopeo(['list-tags', '--tls-verify=false', `docker://${mirror.host}/library/tags`]);
    t.same((JSON.parse(tags.stdout || '{}') as { Tags?: string[] }).Tags?.sort(), ['1.0', '1.1', '2.0', 'latest'], 'every tag listed');
    t.equal(manifestOf(await copy(t, `docker://${mirror.host}/library/tags:1.1`)), images.tags['1.1']?.manifestDigest, 'tags:1.1');

    const all = await copy(t, `docker://${mirror.host}/library/multiarch:1`, { all: true });
    t.equal(manifestOf(all), images.multi.manifestDigest, 'the index arrives intact');
    const arm = await copy(t, `docker://${mirror.host}/library/multiarch:1`, { arch: 'arm64' });
    t.equal(manifestOf(arm), images.arm64.manifestDigest, 'the index resolves to the asked platform');

    const big = await copy(t, `docker://${mirror.host}/library/big:1`);
    t.equal(manifestOf(big), images.big.manifestDigest, 'the >200 MiB image');
    await verifyBlobs(t, big, images.big);

    const app = await copy(t, `docker://${mirror.host}/${SECOND}/team/app:1.0.0`);
    t.equal(manifestOf(app), images.app.manifestDigest, 'second upstream by path prefix');
    t.equal(world.second.front.blobGets(), images.app.layers.length + 1, 'served by the second upstream');

    const missing = await skopeo(['copy', '--src-tls-verify=false', `docker://${mirror.host}/library/alpine:nope`, `dir:${path.join(dir, 'missing')}`]);
    t.not(missing.code, 0, 'a missing tag fails');
    t.notOk(missing.timedOut, 'without hanging');
    t.match(missing.stderr, /reading manifest nope in .*: manifest unknown/, 'as skopeo reports not found');
  });

  await t.test('copying again sends no blob GET upstream', async (t) => {
    const blobGets = world.blobGets();
    t.equal(manifestOf(await copy(t, `docker://${mirror.host}/alpine:3.20`)), images.alpine.manifestDigest, 'alpine (library/ added)');
    t.equal(manifestOf(await copy(t, 'docker://docker.io/library/alpine:3.20', { conf: 'mirror.conf' })), images.alpine.manifestDigest, 'through a registries.conf mirror');
    t.equal(manifestOf(await copy(t, `docker://${mirror.host}/library/big:1`)), images.big.manifestDigest, 'big');
    t.equal(world.blobGets(), blobGets, 'no blob GET reached either upstream');
  });

  await t.test('with the upstreams stopped, copied tags still copy', async (t) => {
    await world.stopUpstreams();
    await sleep(1100); // past manifestTTL: the mirror must try the upstream and fall back to its copy
    const alpine = await copy(t, `docker://${mirror.host}/library/alpine:3.20`);
    t.equal(manifestOf(alpine), images.alpine.manifestDigest, 'alpine');
    await verifyBlobs(t, alpine, images.alpine);
    t.equal(manifestOf(await copy(t, `docker://${mirror.host}/${SECOND}/team/app:1.0.0`)), images.app.manifestDigest, 'second upstream');
    t.ok(world.servedStale('library/alpine', '3.20'), 'the mirror tried the upstream and served its cached manifest');
    t.ok(world.servedStale('team/app', '1.0.0'), 'for the second upstream too');
  });
});
