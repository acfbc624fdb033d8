import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import { scrape } from '../fixtures/prometheus.js';

// upstreams.<name>.notFoundTTL: a pod in CrashLoopBackOff asking for a missing tag costs the upstream
// one request per TTL, not one per restart. Counted with the test registry's own request log.

const UP = 'registry.local';

/** A clock the test moves (the mirror's `now`: tag TTL, notFoundTTL). */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = Date.UTC(2026, 0, 1);
  return { now: () => at, advance: (ms) => void (at += ms) };
}

async function world(t: Parameters<typeof startTestRegistry>[0], notFoundTTL: string | null, extra: { sync?: unknown } = {}) {
  const reg = await startTestRegistry(t);
  // The repository exists: what is missing is the tag (MANIFEST_UNKNOWN, not NAME_UNKNOWN).
  reg.pushImage('team/app', 'present', quickImage('negative-present'));
  const time = clock();
  const mirror = await startMirror(t, { upstreams: { [UP]: { url: reg.url, notFoundTTL } }, now: time.now, ...extra });
  return { reg, mirror, time };
}

function get(mirror: TestMirror, path: string) {
  return request(`${mirror.url}/v2/${path}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
}

/** The access log lines of manifest requests, in order. */
function accessLines(mirror: TestMirror): { status: number; source?: string }[] {
  return mirror.logs
    .map((l) => JSON.parse(l) as { msg: string; route?: string; status: number; source?: string })
    .filter((l) => l.msg === 'request' && l.route === 'manifest');
}

t.test('a missing tag asked for again and again within the TTL: one upstream request, the same 404 each time, counted as negative', async (t) => {
  const { reg, mirror, time } = await world(t, '30s');
  const answers = [];
  for (let i = 0; i < 5; i++) {
    answers.push(await get(mirror, 'team/app/manifests/missing'));
    time.advance(5_000);
  }
  t.equal(reg.count({ kind: 'manifest' }), 1, 'the upstream was asked once');
  for (const res of answers) {
    t.equal(res.status, 404);
    t.equal(errorCode(res), 'MANIFEST_UNKNOWN');
    t.equal(JSON.parse(res.body.toString()).errors[0].message, JSON.parse(answers[0]!.body.toString()).errors[0].message, 'the same message');
  }
  const m = await scrape(mirror.url);
  t.equal(m.value('regmirror_client_lookups_total', { kind: 'manifest', outcome: 'negative' }), 4);
  t.equal(m.value('regmirror_cache_lookups_total', { kind: 'manifest', outcome: 'negative' }), 4);
  t.equal(m.value('regmirror_client_lookups_total', { kind: 'blob', outcome: 'negative' }), 0, 'the series exists from the start');
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { traffic: { lookups: { manifest: Record<string, number> }; hitRatio: number | null } };
  t.match(status.traffic.lookups.manifest, { hit: 0, miss: 0, negative: 4 }, 'the status page shows them as their own outcome (the first 404 was no lookup answered with content)');
  t.equal(status.traffic.hitRatio, null, 'a remembered 404 is no cache hit');
  t.same(
    accessLines(mirror).map((l) => [l.status, l.source]),
    [[404, undefined], [404, 'negative'], [404, 'negative'], [404, 'negative'], [404, 'negative']],
    'the access log says which answers came from memory',
  );

  time.advance(5_001); // 30.001 s after the first answer
  t.equal((await get(mirror, 'team/app/manifests/missing')).status, 404);
  t.equal(reg.count({ kind: 'manifest' }), 2, 'past the TTL the upstream is asked again');

  const image = quickImage('negative-appears');
  reg.pushImage('team/app', 'missing', image);
  t.equal((await get(mirror, 'team/app/manifests/missing')).status, 404, 'pushed upstream, but still remembered as missing within the TTL');
  t.equal(reg.count({ kind: 'manifest' }), 2);
  time.advance(30_000);
  const found = await get(mirror, 'team/app/manifests/missing');
  t.equal(found.status, 200, 'visible once the TTL is over');
  t.equal(found.headers['docker-content-digest'], image.manifestDigest);
  t.equal((await get(mirror, 'team/app/manifests/other-missing')).status, 404);
  t.equal(reg.count({ kind: 'manifest' }), 4, 'each reference is remembered on its own');
});

t.test('a manifest by a digest the repository does not have is remembered too', async (t) => {
  const { reg, mirror } = await world(t, '30s');
  const digest = `sha256:${'ab'.repeat(32)}`;
  for (let i = 0; i < 3; i++) t.equal((await get(mirror, `team/app/manifests/${digest}`)).status, 404);
  t.equal(reg.count({ kind: 'manifest' }), 1);
});

t.test('a missing blob, by GET or HEAD: remembered the same way, apart from manifests', async (t) => {
  const { reg, mirror } = await world(t, '30s');
  const digest = `sha256:${'cd'.repeat(32)}`;
  for (let i = 0; i < 3; i++) {
    const res = await request(`${mirror.url}/v2/team/app/blobs/${digest}`);
    t.equal(res.status, 404);
    t.equal(errorCode(res), 'BLOB_UNKNOWN');
  }
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 1);
  for (let i = 0; i < 3; i++) t.equal((await request(`${mirror.url}/v2/team/app/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  t.equal(reg.count({ kind: 'blob', method: 'HEAD' }), 0, 'the GET\'s 404 answers the HEAD too');
  const manifest = await get(mirror, `team/app/manifests/${digest}`);
  t.equal(errorCode(manifest), 'MANIFEST_UNKNOWN', 'the same digest as a manifest is asked of upstream on its own');
  t.equal(reg.count({ kind: 'manifest' }), 1);
  t.equal((await scrape(mirror.url)).value('regmirror_client_lookups_total', { kind: 'blob', outcome: 'negative' }), 5, 'every answer from memory counted, HEADs too');
});

t.test('notFoundTTL "0": every request asks the upstream', async (t) => {
  const { reg, mirror } = await world(t, '0');
  for (let i = 0; i < 3; i++) t.equal((await get(mirror, 'team/app/manifests/missing')).status, 404);
  t.equal(reg.count({ kind: 'manifest' }), 3);
  t.equal((await scrape(mirror.url)).value('regmirror_client_lookups_total', { kind: 'manifest', outcome: 'negative' }), 0);
});

t.test('the default is on (30 s) when the config says nothing', async (t) => {
  const { reg, mirror } = await world(t, null);
  for (let i = 0; i < 3; i++) t.equal((await get(mirror, 'team/app/manifests/missing')).status, 404);
  t.equal(reg.count({ kind: 'manifest' }), 1);
});

t.test('sync is never answered from memory, and what it finds is served at once', async (t) => {
  const { reg, mirror } = await world(t, '30s', { sync: { entries: [{ name: 'app', upstream: UP, repository: 'team/app', tags: ['late'] }] } });
  t.equal((await get(mirror, 'team/app/manifests/late')).status, 404);
  reg.pushImage('team/app', 'late', quickImage('negative-sync'));
  t.equal((await get(mirror, 'team/app/manifests/late')).status, 404, 'remembered');
  t.ok((await mirror.app.sync.run({ only: 'app' })).ok, 'the sync asked upstream and found it');
  const res = await get(mirror, 'team/app/manifests/late');
  t.equal(res.status, 200, 'a client gets it right after the sync, within the TTL');
});

t.test('a cached tag that disappears upstream: the revalidation 404 is remembered, and a later tag is not blocked past the TTL', async (t) => {
  const reg = await startTestRegistry(t);
  const time = clock();
  const mirror = await startMirror(t, { upstreams: { [UP]: { url: reg.url, notFoundTTL: '10s' } }, now: time.now, manifestTTL: '1s' });
  reg.pushImage('team/app', '1', quickImage('negative-revalidate'));
  t.equal((await get(mirror, 'team/app/manifests/1')).status, 200);
  reg.deleteTag('team/app', '1');
  time.advance(2_000);
  t.equal((await get(mirror, 'team/app/manifests/1')).status, 404, 'the revalidation HEAD found it gone');
  const asked = reg.count({ kind: 'manifest' });
  t.equal((await get(mirror, 'team/app/manifests/1')).status, 404);
  t.equal(reg.count({ kind: 'manifest' }), asked, 'no second HEAD within the TTL');
  const again = quickImage('negative-revalidate-2');
  reg.pushImage('team/app', '1', again);
  time.advance(10_000);
  const res = await get(mirror, 'team/app/manifests/1');
  t.equal(res.status, 200);
  t.equal(res.headers['docker-content-digest'], again.manifestDigest, 'the new tag, after the TTL');
});

t.test('config: notFoundTTL takes the usual durations, 30 s by default, and refuses anything else', async (t) => {
  const parse = (u: Record<string, unknown>) => parseConfig({ upstreams: { [UP]: { url: 'https://registry.example', ...u } } }, { baseDir: '/x', env: {} });
  t.equal(parse({}).upstreams.get(UP)?.notFoundTTLms, 30_000);
  t.equal(parse({ notFoundTTL: '2m' }).upstreams.get(UP)?.notFoundTTLms, 120_000);
  t.equal(parse({ notFoundTTL: '0' }).upstreams.get(UP)?.notFoundTTLms, 0);
  for (const bad of ['soon', '-1s', '', true, {}]) {
    const err = t.throws(() => parse({ notFoundTTL: bad })) as unknown;
    t.type(err, ConfigError);
    t.equal((err as ConfigError).key, `upstreams.${UP}.notFoundTTL`);
    t.match((err as ConfigError).message, /must be a duration such as "30s", or "0"/);
  }
});
