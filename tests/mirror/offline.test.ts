import t, { type Test } from 'tap';
import { quickImage, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import { startSilentListener } from '../fixtures/silent-listener.js';
import { tempDir } from '../fixtures/daemons.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';
const DAY = 24 * 60 * 60_000;

/** A client's pull: the manifest by tag, then the config and every layer. */
async function pull(t: Test, mirror: TestMirror, repo: string, tag: string, image: Image): Promise<void> {
  const manifest = await request(`${mirror.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  t.equal(manifest.status, 200, `${repo}:${tag}`);
  t.equal(manifest.headers['docker-content-digest'], image.manifestDigest, `${repo}:${tag} digest`);
  for (const blob of [image.config, ...image.layers]) {
    const res = await request(`${mirror.url}/v2/${repo}/blobs/${blob.digest}`);
    t.equal(res.status, 200, `${repo} blob ${blob.digest}`);
  }
}

t.test('an offline upstream is never dialled: anything not held is 404 at once', async (t) => {
  const firewall = await startSilentListener(t);
  const mirror = await startMirror(t, {
    upstreams: { 'air.local': { url: firewall.url, offline: true } },
    timeouts: { connect: '1s', headers: '1s', bodyIdle: '1s' },
  });
  const image = quickImage('never-carried');
  const cases: [string, string, number, string | undefined][] = [
    ['GET', '/v2/team/app/manifests/1.0', 404, 'MANIFEST_UNKNOWN'],
    ['HEAD', '/v2/team/app/manifests/1.0', 404, undefined],
    ['GET', `/v2/team/app/manifests/${image.manifestDigest}`, 404, 'MANIFEST_UNKNOWN'],
    ['GET', `/v2/team/app/blobs/${image.layers[0]!.digest}`, 404, 'BLOB_UNKNOWN'],
    ['HEAD', `/v2/team/app/blobs/${image.layers[0]!.digest}`, 404, undefined],
    ['GET', '/v2/team/app/tags/list', 404, 'NAME_UNKNOWN'],
    ['GET', '/v2/team/app/manifests/1.0?ns=air.local', 404, 'MANIFEST_UNKNOWN'],
  ];
  for (const [method, target, status, code] of cases) {
    const res = await request(`${mirror.url}${target}`, { method, headers: { accept: ACCEPT } });
    t.equal(res.status, status, `${method} ${target}`);
    if (code !== undefined) t.equal(errorCode(res), code, `${method} ${target}`);
  }
  t.equal(firewall.accepted(), 0, 'not one connection towards the upstream');
  t.equal((await request(`${mirror.url}/readyz`)).status, 200, 'ready: there is nothing to wait for');

  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { upstreams: { name: string; state: string; requests: number }[] };
  t.same(status.upstreams.map((u) => [u.name, u.state, u.requests]), [['air.local', 'offline', 0]], 'the status page says offline');
});

t.test('an upstream with no url at all is offline too', async (t) => {
  const mirror = await startMirror(t, { upstreams: { 'air.local': {} } });
  const res = await request(`${mirror.url}/v2/library/alpine/manifests/latest`, { headers: { accept: ACCEPT } });
  t.equal(res.status, 404);
  t.equal(errorCode(res), 'MANIFEST_UNKNOWN');
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { upstreams: { url: string | null; state: string }[] };
  t.same(status.upstreams.map((u) => [u.url, u.state]), [[null, 'offline']]);
  t.match((await request(`${mirror.url}/readyz`)).body.toString(), /"ok"/);
});

t.test('what was cached online is served offline, past the TTL, with no revalidation', async (t) => {
  const reg = await startTestRegistry(t);
  const images = { '1': quickImage('one'), '2': quickImage('two'), '3': quickImage('three') };
  for (const [tag, image] of Object.entries(images)) reg.pushImage('team/app', tag, image);
  const storage = tempDir(t, 'regmirror-offline-');

  const online = await startMirror(t, { upstreams: { 'air.local': { url: reg.url } }, storage, manifestTTL: '1m' });
  for (const [tag, image] of Object.entries(images)) await pull(t, online, 'team/app', tag, image);
  await online.app.settled();
  await online.close();

  // Upstream moves a tag after the volume was carried across: the disconnected side cannot know.
  reg.pushImage('team/app', '1', quickImage('moved'));
  const seen = reg.requests.length;
  let clock = Date.now() + DAY;
  const offline = await startMirror(t, { upstreams: { 'air.local': { url: reg.url, offline: true } }, storage, manifestTTL: '1m', now: () => clock });
  for (const [tag, image] of Object.entries(images)) await pull(t, offline, 'team/app', tag, image);
  clock += 30 * DAY;
  const again = await request(`${offline.url}/v2/team/app/manifests/1`, { method: 'HEAD', headers: { accept: ACCEPT } });
  t.equal(again.headers['docker-content-digest'], images['1'].manifestDigest, 'still the carried digest a month on');
  const byDigest = await request(`${offline.url}/v2/team/app/manifests/${images['2'].manifestDigest}`, { headers: { accept: ACCEPT } });
  t.ok(byDigest.body.equals(images['2'].manifest), 'by digest too');
  t.equal(reg.requests.length, seen, 'the offline mirror sent nothing upstream');

  const unknownTag = await request(`${offline.url}/v2/team/app/manifests/4`, { headers: { accept: ACCEPT } });
  t.equal(errorCode(unknownTag), 'MANIFEST_UNKNOWN', 'a tag that was not carried is unknown');
  t.equal(reg.requests.length, seen);
});

t.test('tags/list of an offline upstream lists the held tags, with n/last pages and a Link', async (t) => {
  const reg = await startTestRegistry(t);
  const tags = ['1.0', '1.1', '2.0'];
  for (const tag of tags) reg.pushImage('library/alpine', tag, quickImage(`alpine-${tag}`));
  reg.pushImage('library/alpine', 'never-pulled', quickImage('never-pulled'));
  const storage = tempDir(t, 'regmirror-offline-');
  const online = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage });
  for (const tag of tags) t.equal((await request(`${online.url}/v2/library/alpine/manifests/${tag}`, { headers: { accept: ACCEPT } })).status, 200);
  await online.close();

  const offline = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, offline: true } }, storage });
  const seen = reg.requests.length;
  const list = async (target: string) => {
    const res = await request(`${offline.url}${target}`);
    t.equal(res.status, 200, target);
    t.equal(res.headers['content-type'], 'application/json');
    return { body: JSON.parse(res.body.toString()) as { name: string; tags: string[] }, link: res.headers.link };
  };
  t.same((await list('/v2/alpine/tags/list')).body, { name: 'library/alpine', tags }, 'only what the mirror holds');
  const first = await list('/v2/alpine/tags/list?n=2');
  t.same(first.body.tags, ['1.0', '1.1']);
  t.equal(first.link, '</v2/alpine/tags/list?n=2&last=1.1>; rel="next"', 'the client\'s own name in the Link');
  const second = await list('/v2/alpine/tags/list?n=2&last=1.1');
  t.same(second.body.tags, ['2.0']);
  t.equal(second.link, undefined, 'no Link after the last page');
  const viaNs = await list('/v2/library/alpine/tags/list?n=1&last=1.0&ns=docker.io');
  t.same(viaNs.body.tags, ['1.1']);
  t.equal(viaNs.link, '</v2/library/alpine/tags/list?n=1&last=1.1&ns=docker.io>; rel="next"');
  t.equal(reg.requests.length, seen, 'listed from the records, not upstream');
});
