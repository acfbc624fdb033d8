import t, { type Test } from 'tap';
import { ADMIN_COMMANDS, callAdmin, pinnedInSnapshot, UsageError, type AdminCommandSpec } from '../../src/admin/index.js';
import { parseDigest } from '../../src/oci/index.js';
import { quickImage, sha256, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';

// The command table end to end inside one process: the request a CLI would build, the admin socket
// of a running serve, the command's work and how a person sees the result. (tests/cli/ runs the same
// commands as child processes; this file is where the table itself is held to its contract.)

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };

async function pull(t: Test, url: string, repo: string, image: Image): Promise<void> {
  t.equal((await request(`${url}/v2/${repo}/manifests/v1`, { headers: ACCEPT })).status, 200);
  for (const blob of [image.config, ...image.layers]) t.equal(sha256((await request(`${url}/v2/${repo}/blobs/${blob.digest}`)).body), blob.digest);
}

const digestsOf = (img: Image): string[] => [img.manifestDigest, img.config.digest, ...img.layers.map((l) => l.digest)];

function spec(name: string): AdminCommandSpec {
  const found = ADMIN_COMMANDS.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no admin command ${name}`);
  return found;
}

t.test('every command of the table runs through the admin socket of a running serve', async (t) => {
  t.same(ADMIN_COMMANDS.map((c) => c.name).sort(), ['gc', 'ls', 'prune', 'verify']);
  const reg = await startTestRegistry(t);
  const [keepOld, keepNew, dropOld, dropNew] = ['keep-old', 'keep-new', 'drop-old', 'drop-new'].map((n) => quickImage(`commands-${n}`)) as [Image, Image, Image, Image];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '0', pin: ['docker.io/team/keep'] });
  // Each tag moves once: the old images are reached by no tag, one of them in a pinned repository.
  for (const [repo, old, next] of [['team/keep', keepOld, keepNew], ['team/drop', dropOld, dropNew]] as const) {
    reg.pushImage(repo, 'v1', old);
    await pull(t, mirror.url, repo, old);
    reg.pushImage(repo, 'v1', next);
    await pull(t, mirror.url, repo, next);
  }
  await mirror.app.settled();
  const call = async (body: unknown) => callAdmin(mirror.storage, 'POST', '/v1/command', body);

  const owner = await callAdmin(mirror.storage, 'GET', '/v1/owner');
  t.equal(owner.status, 200);
  t.match(owner.body, { kind: 'serve', pid: process.pid });
  t.equal((await callAdmin(mirror.storage, 'GET', '/v1/nothing')).status, 404);
  t.equal((await call({ command: 'nope' })).status, 400, 'an unknown command');
  t.equal((await call({ command: 'prune' })).status, 400, 'prune without a selection is malformed');
  t.equal((await call({ command: 'prune', olderThanMs: -1 })).status, 400, 'a negative age is malformed');

  const ls = await call(spec('ls').fromCli({}));
  t.equal(ls.status, 200);
  const listing = spec('ls').format(ls.body);
  t.match(listing, /docker\.io\/team\/keep\s+v1/);
  t.match(listing, /docker\.io\/team\/drop\s+v1/);
  t.match(listing, /^2 tags; \d+ blob files/m);

  const verify = await call(spec('verify').fromCli({}));
  t.equal(verify.status, 200);
  t.notOk(spec('verify').failed?.(verify.body), 'nothing corrupt');
  t.match(spec('verify').format(verify.body), /all intact/);

  const dry = await call(spec('prune').fromCli({ repo: 'team/drop', dryRun: true }));
  t.equal(dry.status, 200);
  t.match(spec('prune').format(dry.body), /would prune docker\.io\/team\/drop:v1[\s\S]*would prune 1 tags/);

  const gc = await call(spec('gc').fromCli({}));
  t.equal(gc.status, 200);
  const deleted = (gc.body as { blobs: Array<{ digest: string }> }).blobs.map((b) => b.digest).sort();
  t.same(deleted, digestsOf(dropOld).sort(), 'gc takes the unpinned unreachable image, not the pinned one');
  t.match(spec('gc').format(gc.body), new RegExp(`deleted ${dropOld.layers[0]!.digest}[\\s\\S]*freed ${deleted.length} blobs`));
  for (const d of digestsOf(keepOld)) t.equal((await request(`${mirror.url}/v2/team/keep/blobs/${d}`)).status, 200, `pinned ${d.slice(0, 19)} is still served`);
});

t.test('CLI options become requests; bad ones are usage errors', async (t) => {
  t.same(spec('verify').fromCli({ fix: true }), { command: 'verify', fix: true });
  t.same(spec('prune').fromCli({ olderThan: '30d', dryRun: true }), { command: 'prune', dryRun: true, olderThanMs: 30 * 86_400_000 });
  for (const [options, message] of [
    [{}, /--older-than DURATION and\/or --repo PATTERN/],
    [{ olderThan: 'soon' }, /"soon" is not a duration/],
    [{ repo: 'lib**' }, /--repo: "\*\*" must be a whole segment/],
  ] as const) {
    t.throws(() => spec('prune').fromCli(options), message);
    t.throws(() => spec('prune').fromCli(options), UsageError);
  }
});

t.test('alone on the storage, pins are read from the cache index snapshot the server left', async (t) => {
  const reg = await startTestRegistry(t);
  const kept = quickImage('snapshot-pinned');
  const other = quickImage('snapshot-other');
  reg.pushImage('team/keep', 'v1', kept);
  reg.pushImage('team/other', 'v1', other);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  await pull(t, mirror.url, 'team/keep', kept);
  await pull(t, mirror.url, 'team/other', other);
  await mirror.close();
  const pinned = await pinnedInSnapshot(mirror.storage, (key) => key.includes('team/keep'))();
  t.same([...pinned].sort(), digestsOf(kept).map((d) => parseDigest(d)).sort());
  t.same(await pinnedInSnapshot(mirror.storage, () => false)(), new Set());
});
