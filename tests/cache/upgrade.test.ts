import t, { type Test } from 'tap';
import { blobSizes, checkCacheInvariants } from '../fixtures/cache-invariants.js';
import { request, type RawResponse } from '../fixtures/http.js';
import { MediaTypes, sha256 } from '../fixtures/images.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { loadUpgradeFixture, unreachableUrl, UPGRADE_FIXTURES, type UpgradeFixture } from '../fixtures/upgrade-fixture.js';

// Storage directories written by released builds must be served by this one as they are: nothing
// downloaded again, recency and pins kept. A build that changes the layout migrates at start, once,
// and logs it: it then names the fixtures it migrates here, and the "once" test below holds it.
const MIGRATES: ReadonlySet<string> = new Set<string>();
const MIGRATION_LOG = /migrat/i;

const ACCEPT = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerList].join(', ');

interface Status {
  cache: { sizeBytes: number; maxSizeBytes: number; blobs: number; evictions: number };
  traffic: { bytesServed: { upstream: number } };
}

/** The mirror on a fresh copy of the fixture, with the fixture's config and an upstream that refuses every connection. */
async function startOnCopy(t: Test, fixture: UpgradeFixture, overrides: { maxSize?: number; storage?: string } = {}): Promise<TestMirror> {
  const { record } = fixture;
  return startMirror(t, {
    upstreams: { [record.upstream]: { url: await unreachableUrl() } },
    storage: overrides.storage ?? fixture.copy(t),
    maxSize: overrides.maxSize ?? record.config.storage.maxSize,
    pin: record.config.storage.pin,
    manifestTTL: record.config.manifestTTL,
    // Fail fast on the refused connections (a manifest by tag is revalidated, then served stale).
    timeouts: { connect: '1s', headers: '1s', bodyIdle: '1s' },
  });
}

async function status(mirror: TestMirror): Promise<Status> {
  return JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as Status;
}

function startedCache(mirror: TestMirror): Record<string, unknown> | undefined {
  const started = mirror.logs.map((l) => JSON.parse(l) as { msg: string; cache?: Record<string, unknown> }).find((l) => l.msg === 'regmirror listening');
  return started?.cache;
}

function served(t: Test, res: RawResponse, digest: string, what: string): void {
  t.equal(res.status, 200, `${what}: 200`);
  t.ok(res.complete && sha256(res.body) === digest, `${what}: the exact bytes`);
  t.equal(res.headers['docker-content-digest'], digest, `${what}: digest header`);
}

for (const dir of UPGRADE_FIXTURES) {
  const fixture = loadUpgradeFixture(dir);
  const { record } = fixture;
  const migrates = MIGRATES.has(fixture.name);

  t.test(`${fixture.name}: every tag and digest is served from disk with the upstream unreachable`, async (t) => {
    const mirror = await startOnCopy(t, fixture);
    t.match(startedCache(mirror), { blobs: Object.keys(record.sizes).length, adopted: 0, dropped: 0, removedTempFiles: 0 }, 'the recency snapshot was read: no file adopted, none dropped');
    for (const tag of record.tags) {
      const res = await request(`${mirror.url}/v2/${tag.name}/manifests/${tag.tag}`, { headers: { accept: ACCEPT } });
      served(t, res, tag.digest, `${tag.name}:${tag.tag}`);
      t.equal(res.headers['content-type'], tag.mediaType, `${tag.name}:${tag.tag}: media type`);
    }
    for (const m of record.manifests) {
      const res = await request(`${mirror.url}/v2/${m.name}/manifests/${m.digest}`, { headers: { accept: ACCEPT } });
      served(t, res, m.digest, `${m.name}@${m.digest}`);
      t.equal(res.headers['content-type'], m.mediaType, `${m.name}@${m.digest}: media type`);
    }
    for (const b of record.blobs) {
      const res = await request(`${mirror.url}/v2/${b.name}/blobs/${b.digest}`);
      served(t, res, b.digest, `blob ${b.digest}`);
      t.equal(res.headers['content-length'], String(record.sizes[b.digest]), `blob ${b.digest}: length`);
    }
    const largest = record.blobs.reduce((a, b) => ((record.sizes[b.digest] ?? 0) > (record.sizes[a.digest] ?? 0) ? b : a));
    const size = record.sizes[largest.digest]!;
    const whole = (await request(`${mirror.url}/v2/${largest.name}/blobs/${largest.digest}`)).body;
    const ranged = await request(`${mirror.url}/v2/${largest.name}/blobs/${largest.digest}`, { headers: { range: 'bytes=10-99' } });
    t.equal(ranged.status, 206, 'a range of a cached blob');
    t.equal(ranged.headers['content-range'], `bytes 10-99/${size}`);
    t.same(ranged.body, whole.subarray(10, 100), 'the bytes of that range');
    // The upstream really is out of reach: what the fixture never cached cannot be served.
    for (const b of record.notCached) t.not((await request(`${mirror.url}/v2/${b.name}/blobs/${b.digest}`)).status, 200, `uncached ${b.digest} is not served`);

    const after = await status(mirror);
    t.equal(after.traffic.bytesServed.upstream, 0, 'no byte came from upstream');
    t.match(after.cache, { blobs: Object.keys(record.sizes).length, sizeBytes: Object.values(record.sizes).reduce((a, b) => a + b, 0), evictions: 0 });
    await mirror.close();
    t.same(Object.fromEntries(blobSizes(mirror.storage)), record.sizes, 'the same blob files, none added or lost');
    t.same(await checkCacheInvariants(mirror.storage, { maxSize: after.cache.maxSizeBytes, pinnedDigests: record.pinned }), []);
    t.same(mirror.logs.filter((l) => MIGRATION_LOG.test(l)).length, migrates ? 1 : 0, migrates ? 'the migration is logged' : 'no migration, and the log says none');
  });

  t.test(`${fixture.name}: a second start on the same directory does not migrate again`, async (t) => {
    const first = await startOnCopy(t, fixture);
    await first.close();
    t.equal(first.logs.filter((l) => MIGRATION_LOG.test(l)).length, migrates ? 1 : 0, 'the first start');
    const second = await startOnCopy(t, fixture, { storage: first.storage });
    t.same(second.logs.filter((l) => MIGRATION_LOG.test(l)), [], 'the second start says nothing about migrating');
    const tag = record.tags[0]!;
    served(t, await request(`${second.url}/v2/${tag.name}/manifests/${tag.tag}`, { headers: { accept: ACCEPT } }), tag.digest, `${tag.name}:${tag.tag} after the second start`);
    await second.close();
    t.same(Object.fromEntries(blobSizes(second.storage)), record.sizes);
  });

  t.test(`${fixture.name}: a smaller budget evicts the least recently used unpinned blobs and keeps the pinned ones`, async (t) => {
    // Half the unpinned blobs must go, in the fixture's recency order; the pinned ones are older still.
    const sizes = record.sizes;
    const evicted = record.recency.slice(0, Math.floor(record.recency.length / 2));
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    const budget = total - evicted.reduce((n, d) => n + sizes[d]!, 0);
    const mirror = await startOnCopy(t, fixture, { maxSize: budget });
    t.match((await status(mirror)).cache, { evictions: evicted.length, sizeBytes: budget }, 'evicted at start to fit the budget');
    for (const m of record.manifests.filter((x) => record.pinned.includes(x.digest))) {
      served(t, await request(`${mirror.url}/v2/${m.name}/manifests/${m.digest}`, { headers: { accept: ACCEPT } }), m.digest, `pinned manifest ${m.digest}`);
    }
    for (const b of record.blobs.filter((x) => record.pinned.includes(x.digest))) {
      served(t, await request(`${mirror.url}/v2/${b.name}/blobs/${b.digest}`), b.digest, `pinned blob ${b.digest}`);
    }
    await mirror.close();
    const kept = Object.keys(sizes).filter((d) => !evicted.includes(d));
    t.same([...blobSizes(mirror.storage).keys()].sort(), kept.sort(), 'exactly the least recently used unpinned blobs went');
    t.same(await checkCacheInvariants(mirror.storage, { maxSize: budget, pinnedDigests: record.pinned }), []);
  });
}
