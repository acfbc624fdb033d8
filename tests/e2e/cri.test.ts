import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startContainerd, tempDir, writeHostsToml, type Containerd } from '../fixtures/daemons.js';
import { criClient, grpcError, pullOutcome, type CriAuthConfig, type CriImageService } from '../fixtures/cri.js';
import { SECOND, startE2eWorld } from '../fixtures/e2e-world.js';
import { PRIVATE, startAuthWorld } from '../fixtures/auth-world.js';
import type { Image } from '../fixtures/images.js';
import { until } from '../fixtures/poll.js';
import { toolsMissing } from '../fixtures/tools.js';

// kubelet's own pull path: containerd's CRI plugin with `config_path` pointing at the hosts.toml
// files the README shows, asked over the CRI gRPC API (runtime.v1.ImageService) exactly as
// kubelet asks it: PullImage, with an AuthConfig when a pod has an imagePullSecret; ImageStatus
// and ListImages to see what it holds; RemoveImage as its image garbage collection does.
const tools = toolsMissing(['containerd', 'ctr', 'docker-registry']);
const root = process.getuid?.() === 0 ? false : 'needs root: containerd (as on every node) runs as root';
const skip = tools.skip || root;
if (skip && tools.required) t.fail(`e2e CRI: ${skip}`);

/** A hosts.toml as the README shows it: `server`, then the mirror as a pull host (with its CA over TLS). */
function hostsToml(server: string, mirrorUrl: string, ca?: string): string {
  return `server = "${server}"\n\n[host."${mirrorUrl}"]\n  capabilities = ["pull", "resolve"]\n${ca === undefined ? '' : `  ca = ${JSON.stringify(ca)}\n`}`;
}

/** The architecture containerd picks from an index on this host. */
const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';

async function contentDigests(c: Containerd): Promise<string[]> {
  const r = await c.ctr(['content', 'ls', '-q']);
  return r.stdout.split('\n').filter((l) => l.startsWith('sha256:'));
}

/** Pulls `ref` over the CRI and checks what ImageStatus says it holds: the upstream's digest under the name. */
async function pull(t: Test, cri: CriImageService, ref: string, digest: string, config: string, auth?: CriAuthConfig): Promise<void> {
  let imageRef = '';
  try {
    imageRef = await cri.pull(ref, auth);
  } catch (err) {
    t.fail(`PullImage ${ref}`, grpcError(err));
    return;
  }
  t.equal(imageRef, config, `PullImage ${ref} answers the image ID (its config digest)`);
  const status = await cri.status(ref);
  const name = ref.slice(0, ref.lastIndexOf(':'));
  t.same(status?.repoDigests, [`${name}@${digest}`], `ImageStatus ${ref}: the upstream's digest`);
  t.ok(status?.repoTags.includes(ref), `ImageStatus ${ref}: the tag`);
  t.equal(status?.id, config, `ImageStatus ${ref}: the image ID`);
}

t.test('kubelet pulls through regmirror over the CRI', { skip }, async (t) => {
  t.setTimeout(300_000);
  const world = await startE2eWorld(t, { big: false }); // no test here pulls it
  const { mirror, images } = world;
  const hosts = tempDir(t, 'rm-certs.d-');
  writeHostsToml(hosts, 'docker.io', hostsToml('https://registry-1.docker.io', mirror.url));
  const c = await startContainerd(t, { criConfigPath: hosts });
  // Written after containerd started: the CRI plugin reads config_path at every pull. The mirror
  // is the second registry's only host, as in an air-gapped cluster: containerd moves on to
  // `server` after a 404, so only there is "not found" the mirror's own answer.
  writeHostsToml(hosts, SECOND, hostsToml(mirror.url, mirror.url));
  const cri = criClient(t, c.address);
  const hostImage: Image = HOST_ARCH === 'arm64' ? images.arm64 : images.amd64;
  const otherImage: Image = HOST_ARCH === 'arm64' ? images.amd64 : images.arm64;

  /** Every image this test pulls: reference, digest the registry serves, image ID. */
  const pulled: Array<[ref: string, digest: string, config: string]> = [
    ['docker.io/library/alpine:3.20', images.alpine.manifestDigest, images.alpine.config.digest],
    ['docker.io/library/multiarch:1', images.multi.manifestDigest, hostImage.config.digest],
    [`${SECOND}/team/app:1.0.0`, images.app.manifestDigest, images.app.config.digest],
  ];

  const version = await cri.version();
  t.match(version, { runtimeName: 'containerd', runtimeApiVersion: 'v1' }, 'the CRI v1 image service of containerd answers');

  await t.test('cold pulls', async (t) => {
    t.same(await cri.list(), [], 'a fresh runtime lists no images');
    await pull(t, cri, 'docker.io/library/alpine:3.20', images.alpine.manifestDigest, images.alpine.config.digest);
    t.equal(world.hub.front.blobGets(), images.alpine.layers.length + 1, 'the mirror fetched config and layers from the upstream');

    await pull(t, cri, 'docker.io/library/multiarch:1', images.multi.manifestDigest, hostImage.config.digest);
    const content = await contentDigests(c);
    t.ok(content.includes(hostImage.manifestDigest) && content.includes(hostImage.config.digest), `the index resolved to linux/${HOST_ARCH}, which was fetched`);
    t.notOk(content.includes(otherImage.manifestDigest), 'the other platform was not');

    await pull(t, cri, `${SECOND}/team/app:1.0.0`, images.app.manifestDigest, images.app.config.digest);
    t.equal(world.second.front.blobGets(), images.app.layers.length + 1, 'served by the second upstream');
    const routed = mirror.logs.filter((l) => l.includes(`"upstream":"${SECOND}"`) && l.includes('"repository":"team/app"'));
    t.ok(routed.length >= 3, `?ns=${SECOND} routed the requests to the second upstream`);

    const listed = (await cri.list()).flatMap((i) => i.repoDigests).sort();
    t.same(listed, pulled.map(([ref, digest]) => `${ref.slice(0, ref.lastIndexOf(':'))}@${digest}`).sort(), 'ListImages: the three images by their upstream digests');

    const missing = await pullOutcome(cri, `${SECOND}/team/app:nope`);
    t.not(missing.code, 'OK', 'a missing tag fails');
    t.match(missing.details, `failed to resolve reference "${SECOND}/team/app:nope": ${SECOND}/team/app:nope: not found`, 'as containerd reports not found', missing);
  });

  await t.test('after RemoveImage, pulling again sends no blob GET to the upstreams', async (t) => {
    const layers = [...images.alpine.layers, ...hostImage.layers, ...images.app.layers].map((l) => l.digest);
    for (const [ref] of pulled) await cri.remove(ref);
    t.same(await cri.list(), [], 'RemoveImage removed every image');
    // containerd's garbage collector drops the content of a removed image; only then is the next pull really a download.
    await until('the content store to drop the removed layers', () => contentDigests(c), (d) => !layers.some((l) => d.includes(l)), { timeoutMs: 30_000, intervalMs: 200 });

    const blobGets = world.blobGets();
    for (const [ref, digest, config] of pulled) await pull(t, cri, ref, digest, config);
    const content = await contentDigests(c);
    t.ok(layers.every((l) => content.includes(l)), 'the layers were downloaded again, into the content store');
    t.equal(world.blobGets(), blobGets, 'no blob GET reached either upstream');
  });

  await t.test('with the upstreams stopped, pulled tags still pull', async (t) => {
    for (const [ref] of pulled) await cri.remove(ref);
    await world.stopUpstreams();
    await sleep(1100); // past manifestTTL: the mirror must try the upstream and fall back to its copy
    for (const [ref, digest, config] of pulled) await pull(t, cri, ref, digest, config);
    t.ok(world.servedStale('library/alpine', '3.20'), 'the mirror tried the upstream and served its cached manifest');
    t.ok(world.servedStale('library/multiarch', '1'), 'the index too');
    t.ok(world.servedStale('team/app', '1.0.0'), 'for the second upstream too');
  });
});

t.test('an imagePullSecret reaches the mirror as the CRI AuthConfig', { skip }, async (t) => {
  t.setTimeout(120_000);
  const w = await startAuthWorld(t);
  const { mirror, images, alice, bob } = w;
  // A private upstream behind a mirror with auth on: the mirror is the only host (`server` too),
  // so the credentials kubelet passes for it never go anywhere but the mirror (see the README).
  const hosts = tempDir(t, 'rm-certs.d-');
  writeHostsToml(hosts, PRIVATE, hostsToml(mirror.url, mirror.url, w.pki.caCert));
  const c = await startContainerd(t, { criConfigPath: hosts });
  const cri = criClient(t, c.address);
  const ref = `${PRIVATE}/team/app:1.0`;
  const heard = () => w.privateUpstream.requests.length;
  const refusal = (auth?: CriAuthConfig) => pullOutcome(cri, ref, auth);

  const before = heard();
  const anonymous = await refusal();
  t.not(anonymous.code, 'OK', 'without an AuthConfig PullImage fails');
  t.match(anonymous.details, `pulling from host ${mirror.host} failed with status code [manifests 1.0]: 401 Unauthorized`, "on the mirror's 401", anonymous);
  const wrong = await refusal({ username: alice.username, password: 'not-her-password' });
  t.match(wrong.details, /401 Unauthorized/, 'a wrong password fails the same way', wrong);
  const denied = await refusal({ username: bob.username, password: bob.password });
  t.match(denied.details, /403 Forbidden/, 'a user no rule allows is refused (403)', denied);
  t.equal(heard(), before, 'the private upstream heard nothing of the refused pulls');
  t.same(await cri.list(), [], 'and the runtime holds no image');

  await pull(t, cri, ref, images.app.manifestDigest, images.app.config.digest, { username: alice.username, password: alice.password });
  t.ok(w.audit().some((a) => a.action === 'token_issued' && a.subject === alice.username && a.scopes?.includes(`repository:${PRIVATE}/team/app:pull`)), 'the mirror issued alice a token for the repository');

  // A robot token's secret under any user name, as a .dockerconfigjson `auth` field (base64 user:secret).
  await cri.remove(ref);
  const auth = Buffer.from(`any-name:${w.robotSecret}`).toString('base64');
  await pull(t, cri, ref, images.app.manifestDigest, images.app.config.digest, { auth });
  t.ok(w.audit().some((a) => a.action === 'token_issued' && a.subject === 'ci' && a.scopes?.includes(`repository:${PRIVATE}/team/app:pull`)), 'the mirror issued the robot token ci a token', { subjects: w.audit().map((a) => a.subject) });
});
