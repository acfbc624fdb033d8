import t from 'tap';
import { buildImage, buildLayer, sha256 } from '../fixtures/images.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import type { TeardownHost } from '../fixtures/teardown.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';

interface Index {
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[];
}

/** An OCI 1.1 artifact manifest whose subject is `subject`, pushed by digest (as cosign and oras do). */
function pushReferrer(reg: TestRegistry, repo: string, subject: { digest: string; size: number }, artifactType: string, payload: string): { digest: string; layer: string; manifest: Buffer } {
  const config = Buffer.from('{}');
  const layer = Buffer.from(payload);
  reg.putBlob(repo, config);
  const layerDigest = reg.putBlob(repo, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: EMPTY, digest: sha256(config), size: config.length },
      layers: [{ mediaType: artifactType, digest: layerDigest, size: layer.length }],
      subject: { mediaType: OCI_MANIFEST, ...subject },
      annotations: { 'org.example.kind': artifactType },
    }),
  );
  return { digest: reg.putManifest(repo, undefined, manifest, OCI_MANIFEST), layer: layerDigest, manifest };
}

async function world(t: TeardownHost, options: { referrers?: boolean; referrersPageSize?: number } = {}) {
  const reg = await startTestRegistry(t, { referrers: true, ...options });
  const image = buildImage({ layers: [buildLayer({ 'app.txt': 'signed app' })], format: 'oci' });
  reg.pushImage('team/app', '1', image);
  const subject = { digest: image.manifestDigest, size: image.manifest.length };
  let clock = 1_800_000_000_000;
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '1m', now: () => clock });
  const url = `${mirror.url}/v2/team/app/referrers/${image.manifestDigest}`;
  return { reg, image, subject, mirror, url, advance: (ms: number) => (clock += ms) };
}

const list = (body: Buffer): Index => JSON.parse(body.toString()) as Index;

t.test('referrers: upstream list served, filtered here, and its artifacts pulled through by digest', async (t) => {
  const { reg, subject, mirror, url } = await world(t);
  const sig = pushReferrer(reg, 'team/app', subject, SIG, 'signature payload');
  const sbom = pushReferrer(reg, 'team/app', subject, SBOM, '{"spdxVersion":"SPDX-2.3"}');

  const all = await request(url);
  t.equal(all.status, 200);
  t.equal(all.headers['content-type'], OCI_INDEX);
  t.equal(all.headers['oci-filters-applied'], undefined, 'no filter asked, none claimed');
  t.same(list(all.body).manifests.map((m) => m.digest).sort(), [sig.digest, sbom.digest].sort());
  t.same(list(all.body).manifests.find((m) => m.digest === sig.digest)?.annotations, { 'org.example.kind': SIG }, 'annotations kept');

  const signatures = await request(`${url}?artifactType=${encodeURIComponent(SIG)}`);
  t.equal(signatures.headers['oci-filters-applied'], 'artifactType');
  t.same(list(signatures.body).manifests.map((m) => m.digest), [sig.digest], 'only the signature');
  t.equal(reg.count({ kind: 'referrers' }), 1, 'both answers from one upstream GET');
  t.notOk(reg.filter({ kind: 'referrers' })[0]?.query.has('artifactType'), 'the unfiltered list is what the mirror asks for and keeps');

  const manifest = await request(`${mirror.url}/v2/team/app/manifests/${sig.digest}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(sha256(manifest.body), sig.digest, 'the referrer manifest, by digest, verified');
  const layer = await request(`${mirror.url}/v2/team/app/blobs/${sig.layer}`);
  t.equal(layer.body.toString(), 'signature payload', 'and its payload blob');

  const prefixed = await request(`${mirror.url}/v2/docker.io/team/app/referrers/${subject.digest}`);
  t.equal(prefixed.status, 200, 'through the upstream-prefixed path too');
});

t.test('referrers are cached like a tag: trusted for the TTL, fetched again after it, stale while upstream is down', async (t) => {
  const { reg, subject, url, advance } = await world(t);
  const first = pushReferrer(reg, 'team/app', subject, SIG, 'one');
  t.same(list((await request(url)).body).manifests.map((m) => m.digest), [first.digest]);
  const second = pushReferrer(reg, 'team/app', subject, SBOM, 'two');
  t.same(list((await request(url)).body).manifests.map((m) => m.digest), [first.digest], 'within the TTL: the cached list');
  t.equal(reg.count({ kind: 'referrers' }), 1);

  advance(61_000);
  t.same(list((await request(url)).body).manifests.map((m) => m.digest).sort(), [first.digest, second.digest].sort(), 'after it: upstream asked again');
  t.equal(reg.count({ kind: 'referrers' }), 2);

  advance(61_000);
  await reg.stop();
  const stale = await request(url);
  t.equal(stale.status, 200, 'upstream down: the last list');
  t.equal(list(stale.body).manifests.length, 2);
});

t.test('an upstream without the referrers API: 404 (the tag fallback), remembered for the TTL; the legacy tags flow', async (t) => {
  const { reg, subject, image, mirror, url } = await world(t, { referrers: false });
  const sig = pushReferrer(reg, 'team/app', subject, SIG, 'legacy');
  const fallbackTag = `${image.manifestDigest.replace(':', '-')}.sig`;
  reg.putManifest('team/app', fallbackTag, sig.manifest, OCI_MANIFEST);
  for (let i = 0; i < 2; i++) {
    const res = await request(url);
    t.equal(res.status, 404, 'no referrers API upstream: none here either, never an empty 200 list');
    t.equal(errorCode(res), 'UNSUPPORTED');
    t.match(res.body.toString(), /no referrers API/);
  }
  t.equal(reg.count({ kind: 'referrers' }), 1, 'the 404 is remembered for the TTL');
  const tagged = await request(`${mirror.url}/v2/team/app/manifests/${fallbackTag}`, { headers: { accept: OCI_MANIFEST } });
  t.equal(tagged.status, 200, 'the sha256-<hex>.sig tag through the manifest path');
  t.equal(tagged.headers['docker-content-digest'], sig.digest);
});

t.test('no list yet and upstream failing: the failure, never an empty 200', async (t) => {
  const { reg, url } = await world(t);
  reg.inject({ match: { kind: 'referrers' }, type: 'status', status: 503, times: 100 });
  const down = await request(url);
  t.equal(down.status, 503, 'upstream unavailable, nothing recorded: unavailable here too');
  reg.clearFaults();
  reg.inject({ match: { kind: 'referrers' }, type: 'status', status: 200, body: '{"manifests": "not a list"}', times: 1 });
  const bad = await request(url);
  t.equal(bad.status, 502, 'a malformed list from upstream is not relayed');
  t.match(bad.body.toString(), /invalid referrers list/);
  const before = reg.count({ kind: 'referrers' });
  const good = await request(url);
  t.equal(good.status, 200, 'nothing wrong was recorded: the next request asks again and gets the list');
  t.same(list(good.body).manifests, []);
  t.equal(reg.count({ kind: 'referrers' }), before + 1);
});

t.test('upstream paging is relayed on the mirror\'s own path, keeping ns and the filter', async (t) => {
  const { reg, subject, mirror } = await world(t, { referrersPageSize: 1 });
  const pushed = ['a', 'b', 'c'].map((p) => pushReferrer(reg, 'team/app', subject, SIG, p).digest);
  const seen: string[] = [];
  let next: string | undefined = `/v2/team/app/referrers/${subject.digest}?ns=docker.io&artifactType=${encodeURIComponent(SIG)}`;
  for (let page = 0; next !== undefined && page < 10; page++) {
    const res = await request(`${mirror.url}${next}`);
    t.equal(res.status, 200);
    seen.push(...list(res.body).manifests.map((m) => m.digest));
    const link = res.headers.link;
    next = typeof link === 'string' ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
    if (next !== undefined) {
      t.match(next, /^\/v2\/team\/app\/referrers\/sha256:[0-9a-f]{64}\?/, 'our own path');
      t.match(next, /ns=docker\.io/, 'ns kept');
      t.match(next, /artifactType=/, 'filter kept');
    }
  }
  t.same(seen.sort(), [...pushed].sort(), 'every referrer, once, across the pages');
});

t.test('bad referrers requests get OCI errors', async (t) => {
  const { mirror } = await world(t);
  const bad = await request(`${mirror.url}/v2/team/app/referrers/sha256:nothex`);
  t.equal(bad.status, 400);
  t.equal(errorCode(bad), 'DIGEST_INVALID');
  const long = await request(`${mirror.url}/v2/team/app/referrers/sha256:${'a'.repeat(64)}?cursor=${'x'.repeat(2000)}`);
  t.equal(long.status, 400, 'an oversized page query');
});
