import t from 'tap';
import { request } from '../fixtures/http.js';
import { buildImage, buildIndex, quickImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';
import { until } from '../fixtures/poll.js';

t.test('an exact tag syncs once, then pulls through the mirror with the upstream stopped', async (t) => {
  const img = quickImage('exact');
  const { reg, mirror } = await startSyncWorld(t, {
    registry: { auth: { kind: 'bearer' } },
    sync: [{ upstream: UP, repository: 'team/app', tags: ['1.0'] }],
  });
  reg.pushImage('team/app', '1.0', img);
  reg.pushImage('team/app', '2.0', quickImage('other'));
  const first = await mirror.app.sync.run();
  t.ok(first.ok, JSON.stringify(first.entries[0]?.errors));
  t.match(first.entries[0]?.images, [{ repository: 'team/app', tag: '1.0', digest: img.manifestDigest, status: 'synced', manifests: 1, blobs: 3 }]);
  t.equal(first.entries[0]?.bytesDownloaded, img.config.size + img.layers.reduce((n, l) => n + l.size, 0));
  t.equal(reg.count({ kind: 'tags' }), 0, 'exact tags need no tag list');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 3);

  const again = await mirror.app.sync.run();
  t.ok(again.ok);
  t.equal(again.entries[0]?.bytesDownloaded, 0, 'cached blobs are not downloaded again');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 3);

  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { sync: { job: string; lastResult: string; lastRun: { images: number; bytes: number; errors: number; startedAt: string } }[] };
  t.match(status.sync.find((s) => s.job === `${UP}/team/app`), { lastResult: 'success', lastRun: { images: 1, bytes: 0, errors: 0, startedAt: /^\d{4}-/ } });
  const metrics = (await request(`${mirror.url}/metrics`)).body.toString();
  t.match(metrics, new RegExp(`regmirror_sync_runs_total\\{job="${UP}/team/app",result="success"\\} 2`));

  await reg.stop();
  const manifest = await request(`${mirror.url}/v2/team/app/manifests/1.0`, { headers: { accept: img.mediaType } });
  t.equal(manifest.status, 200);
  t.equal(sha256(manifest.body), img.manifestDigest);
  for (const layer of img.layers) {
    const blob = await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
    t.equal(blob.status, 200);
    t.equal(sha256(blob.body), layer.digest);
  }
});

t.test('tag filters read the tag list: include, exclude, semver, latest', async (t) => {
  const tags = ['1.24.0', '1.25.0', '1.25.1', '1.25-alpine', '2.0.0', 'latest'];
  const { reg, mirror } = await startSyncWorld(t, {
    sync: { concurrency: 2, entries: [
      { name: 'include', upstream: UP, repository: 'team/app', tags: { include: '^1\\.25' } },
      { name: 'exclude', upstream: UP, repository: 'team/app', tags: { include: '^1\\.25', exclude: 'alpine$' } },
      { name: 'semver', upstream: UP, repository: 'team/app', tags: { semver: '>=1.25 <2' } },
      { name: 'latest', upstream: UP, repository: 'team/app', tags: { latest: 2 } },
    ] },
  });
  for (const tag of tags) reg.pushImage('team/app', tag, quickImage(`filters-${tag}`));
  const run = await mirror.app.sync.run();
  t.ok(run.ok);
  const picked = Object.fromEntries(run.entries.map((e) => [e.job, e.images.map((i) => i.tag)]));
  t.same(picked, {
    include: ['1.25-alpine', '1.25.0', '1.25.1'],
    exclude: ['1.25.0', '1.25.1'],
    semver: ['1.25.0', '1.25.1'],
    latest: ['1.25.1', '2.0.0'],
  });
  t.equal(reg.count({ kind: 'tags' }), 4, 'one tag list per entry');
  t.equal(mirror.app.sync.limiter.peak, 2, 'four jobs at once, never more than sync.concurrency blob downloads');
  // Four entries asked for 1.25.1: one coalesced set of blob downloads.
  t.equal(reg.count({ kind: 'blob', method: 'GET', pathIncludes: quickImage('filters-1.25.1').layers[0]?.digest ?? 'x' }), 1);
});

t.test('a platform filter fetches only those children; the index is still served intact', async (t) => {
  const amd = quickImage('amd', { architecture: 'amd64' });
  const arm = quickImage('arm', { architecture: 'arm64', variant: 'v8' });
  const v7 = quickImage('v7', { architecture: 'arm', variant: 'v7' });
  const index = buildIndex([amd, arm, v7]);
  const { reg, mirror } = await startSyncWorld(t, {
    sync: { concurrency: 2, entries: [{ upstream: UP, repository: 'team/multi', tags: ['1'], platforms: ['linux/arm64'] }] },
  });
  reg.pushIndex('team/multi', '1', index);
  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  t.match(run.entries[0]?.images[0], { digest: index.manifestDigest, manifests: 1, blobs: 3 });
  const manifestGets = reg.filter({ kind: 'manifest', method: 'GET' }).map((r) => r.path.split('/').pop());
  t.same(manifestGets, ['1', arm.manifestDigest], 'the index and the arm64 child only');
  const blobGets = reg.filter({ kind: 'blob', method: 'GET' }).map((r) => r.path.split('/').pop()).sort();
  t.same(blobGets, [arm.config.digest, ...arm.layers.map((l) => l.digest)].sort(), 'only arm64 blobs');
  t.ok(mirror.app.sync.limiter.peak <= 2, `at most sync.concurrency (2) blob downloads at once (peak ${mirror.app.sync.limiter.peak})`);
  t.ok(mirror.app.sync.limiter.peak >= 1, 'the blob downloads went through the limiter');

  await reg.stop();
  const served = await request(`${mirror.url}/v2/team/multi/manifests/1`, { headers: { accept: index.mediaType } });
  t.equal(served.status, 200);
  t.ok(served.body.equals(index.manifest), 'the index bytes, all platforms listed');
});

t.test('a dry run lists what it would do and downloads nothing', async (t) => {
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/app', tags: { semver: '^1' }, prune: true }] });
  const first = quickImage('dry-1');
  reg.pushImage('team/app', '1.0.0', first);
  reg.pushImage('team/app', '1.1.0', quickImage('dry-2'));
  reg.pushImage('team/app', '3.0.0', quickImage('dry-3'));
  const run = await mirror.app.sync.run({ dryRun: true });
  t.ok(run.ok);
  const size = first.config.size + first.layers.reduce((n, l) => n + l.size, 0);
  t.match(run.entries[0], { dryRun: true, images: [{ tag: '1.0.0', status: 'planned', digest: first.manifestDigest, wouldDownload: { blobs: 3, bytes: size } }, { tag: '1.1.0', status: 'planned' }], bytesDownloaded: 0 });
  t.equal(reg.count({ kind: 'manifest', method: 'HEAD' }), 2, 'each tag resolved with a HEAD');
  t.equal(reg.count({ kind: 'blob' }), 0);
  t.match((await mirror.app.sync.run({ dryRun: true })).entries[0]?.images[0], { status: 'planned' }, 'nothing was stored: a second dry run would still download');
  t.equal(mirror.app.metrics.tracker.syncJobs.size, 0, 'a dry run is not a sync run in the status');
});

t.test('the upstream dropping mid-sync fails the run; the next run resumes with what is missing', async (t) => {
  const layers = [randomLayer(200_000, 'drop-1'), randomLayer(200_000, 'drop-2'), randomLayer(200_000, 'drop-3')];
  const img = buildImage({ layers });
  const { reg, mirror } = await startSyncWorld(t, { sync: { concurrency: 1, retries: 0, entries: [{ upstream: UP, repository: 'team/big', tags: ['1'] }] } });
  reg.pushImage('team/big', '1', img);
  const second = layers[1]?.digest ?? '';
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', pathIncludes: second }, type: 'pause-after', bytes: 50_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  const running = mirror.app.sync.run();
  await until('the second layer to be half sent', () => reg.filter({ kind: 'blob', pathIncludes: second }).some((r) => r.bytesSent > 0));
  await reg.stop();
  release();
  const failed = await running;
  t.notOk(failed.ok);
  t.match(failed.entries[0], { result: 'failure', images: [{ status: 'failed' }] });

  await reg.restart();
  reg.resetRequests();
  const resumed = await mirror.app.sync.run();
  t.ok(resumed.ok, JSON.stringify(resumed.entries[0]?.errors));
  const refetched = reg.filter({ kind: 'blob', method: 'GET' }).map((r) => r.path.split('/').pop());
  t.notOk(refetched.includes(img.config.digest), 'the config committed before the drop is not fetched again');
  t.notOk(refetched.includes(layers[0]?.digest), 'nor the first layer');
  t.ok(refetched.includes(second) && refetched.includes(layers[2]?.digest), 'the rest is');
});

t.test('a blob that cannot be cached fails the image instead of reporting it synced, and its GET stops', async (t) => {
  const big = randomLayer(16 * 1024 * 1024, 'too-big');
  const img = buildImage({ layers: [big] });
  const { reg, mirror } = await startSyncWorld(t, { maxSize: '1MiB', sync: { retries: 0, entries: [{ upstream: UP, repository: 'team/big', tags: ['1'] }] } });
  reg.pushImage('team/big', '1', img);
  const run = await mirror.app.sync.run();
  t.notOk(run.ok);
  t.match(run.entries[0], { result: 'failure', images: [{ status: 'failed' }] });
  t.match(JSON.stringify(run.entries[0]?.errors), /cannot be cached: blob 16 MiB does not fit in storage\.maxSize 1 MiB; \d+ B pinned/, 'in the units of the config, no internal words');
  const gets = reg.filter({ kind: 'blob', pathIncludes: big.digest });
  t.ok(gets.length >= 1, 'the layer was asked for');
  for (const get of gets) t.ok(get.bytesSent < big.size, `no upstream GET sent the whole layer into nothing (${get.bytesSent} of ${big.size})`);
});

t.test('429 with Retry-After: the run waits and succeeds', async (t) => {
  const img = quickImage('busy');
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/app', tags: ['1'] }] });
  reg.pushImage('team/app', '1', img);
  reg.inject({ match: { kind: 'blob', pathIncludes: img.layers[0]?.digest ?? 'x' }, type: 'status', status: 429, retryAfter: 1, times: 1 });
  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  t.equal(reg.count({ kind: 'blob', status: 429 }), 1);
  t.equal(reg.count({ kind: 'blob', pathIncludes: img.layers[0]?.digest ?? 'x' }), 2, 'asked again after the pause');
  t.ok(mirror.logs.some((l) => l.includes('backing off') && l.includes('"delayMs":1000') && l.includes(`"job":"${UP}/team/app"`)));
});

t.test('the rate-limit reserve stops the run before upstream runs out, and says so', async (t) => {
  const { reg, mirror } = await startSyncWorld(t, {
    registry: { rateLimit: { limit: 100, remaining: 6 } },
    sync: { rateLimitReserve: 3, entries: [{ upstream: UP, repository: 'team/app', tags: ['a', 'b', 'c', 'd', 'e'] }] },
  });
  for (const tag of ['a', 'b', 'c', 'd', 'e']) reg.pushImage('team/app', tag, quickImage(`rl-${tag}`));
  const run = await mirror.app.sync.run();
  t.notOk(run.ok);
  const entry = run.entries[0];
  t.same(entry?.images.map((i) => i.tag), ['a', 'b', 'c']);
  t.match(entry?.stoppedByRateLimit, /ratelimit-remaining 3 <= reserve 3/);
  t.equal(reg.rateLimit?.remaining, 3, 'the reserve is left for client pulls');
  t.ok(mirror.logs.some((l) => l.includes('sync stopped early')));
  t.match(mirror.app.metrics.tracker.syncJobs.get(`${UP}/team/app`), { lastResult: 'failure', lastError: /rate limit/ });
});

t.test('prune drops local tags that disappeared upstream; without prune they stay', async (t) => {
  const { reg, mirror } = await startSyncWorld(t, {
    sync: [
      { name: 'keep', upstream: UP, repository: 'team/app', tags: { include: '.' } },
      { name: 'prune', upstream: UP, repository: 'team/app', tags: { include: '.' }, prune: true },
    ],
  });
  const a = quickImage('prune-a');
  reg.pushImage('team/app', 'a', a);
  reg.pushImage('team/app', 'b', quickImage('prune-b'));
  t.ok((await mirror.app.sync.run({ only: 'keep' })).ok);
  reg.deleteTag('team/app', 'b');
  const kept = await mirror.app.sync.run({ only: 'keep' });
  t.same(kept.entries[0]?.pruned, []);
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/b`, { headers: { accept: a.mediaType } })).status, 200, 'b still served from the cache');

  const dry = await mirror.app.sync.run({ only: 'prune', dryRun: true });
  t.same(dry.entries[0]?.pruned, ['team/app:b']);
  const pruned = await mirror.app.sync.run({ only: 'prune' });
  t.same(pruned.entries[0]?.pruned, ['team/app:b']);
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/b`, { headers: { accept: a.mediaType } })).status, 404, 'b is gone');
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/a`, { headers: { accept: a.mediaType } })).status, 200);
});

t.test('a repository pattern is expanded through the catalog where upstream allows it', async (t) => {
  const { reg, mirror } = await startSyncWorld(t, {
    registry: { catalog: true, auth: { kind: 'bearer' } },
    sync: [{ upstream: UP, repository: 'team/*', tags: ['1'] }],
  });
  reg.pushImage('team/api', '1', quickImage('cat-api'));
  reg.pushImage('team/web', '1', quickImage('cat-web'));
  reg.pushImage('team/web/extra', '1', quickImage('cat-extra'));
  reg.pushImage('other/app', '1', quickImage('cat-other'));
  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  t.same(run.entries[0]?.images.map((i) => i.repository), ['team/api', 'team/web']);
  t.ok(reg.filter({ kind: 'token' }).some((r) => r.query.get('scope') === 'registry:catalog:*'), 'the catalog token asks for the registry scope');

  const refused = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/*' }] });
  refused.reg.pushImage('team/api', 'latest', quickImage('cat-api'));
  const failed = await refused.mirror.app.sync.run();
  t.notOk(failed.ok);
  t.match(failed.entries[0]?.errors[0], /needs registry\.test's catalog, which failed .*list repositories by name instead/);
});

t.test('a sync and a client pulling the same cold blob share one upstream download', async (t) => {
  const layer = randomLayer(300_000, 'shared');
  const img = buildImage({ layers: [layer] });
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/app', tags: ['1'] }] });
  reg.pushImage('team/app', '1', img);
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', pathIncludes: layer.digest }, type: 'pause-after', bytes: 10_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  const client = request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  await until('the client download to start', () => reg.filter({ kind: 'blob', pathIncludes: layer.digest }).some((r) => r.bytesSent > 0));
  const sync = mirror.app.sync.run();
  await until('the sync to reach the blob', () => mirror.app.metrics.tracker.syncJobs.get(`${UP}/team/app`)?.running === true && reg.count({ kind: 'blob', pathIncludes: img.config.digest }) === 1);
  release();
  const [pulled, run] = await Promise.all([client, sync]);
  t.equal(sha256(pulled.body), layer.digest);
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  t.equal(reg.count({ kind: 'blob', pathIncludes: layer.digest }), 1, 'one upstream GET for both');
  t.equal(run.entries[0]?.bytesDownloaded, img.config.size, 'the joined download is not counted as the sync\'s own');
});

t.test('closing the app while a sync runs ends it without waiting for the schedule', async (t) => {
  const layer = randomLayer(100_000, 'closing');
  const { reg, mirror } = await startSyncWorld(t, { sync: { retries: 0, entries: [{ upstream: UP, repository: 'team/app', tags: ['1'] }] } });
  reg.pushImage('team/app', '1', buildImage({ layers: [layer] }));
  reg.inject({ match: { kind: 'blob', pathIncludes: layer.digest }, type: 'hang', times: 1 });
  const run = mirror.app.sync.run();
  await until('the hanging blob request', () => reg.count({ kind: 'blob', pathIncludes: layer.digest }) === 1);
  await mirror.app.close(200);
  const result = await run;
  t.notOk(result.ok);
  t.equal(result.entries[0]?.result, 'failure');
  t.equal(mirror.app.metrics.tracker.syncJobs.get(`${UP}/team/app`)?.running, false, 'reported as finished');
});

t.test('nested indexes are walked; the platform filter applies at every level', async (t) => {
  const amd = quickImage('nest-amd', { architecture: 'amd64' });
  const arm = quickImage('nest-arm', { architecture: 'arm64' });
  const innerArm = quickImage('nest-inner-arm', { architecture: 'arm64', labels: { inner: '1' } });
  const innerPpc = quickImage('nest-inner-ppc', { architecture: 'ppc64le' });
  const index = buildIndex([amd, arm], 'oci', [buildIndex([innerArm, innerPpc])]);
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/nest', tags: ['1'], platforms: ['linux/arm64'] }] });
  reg.pushIndex('team/nest', '1', index);
  const run = await mirror.app.sync.run();
  t.ok(run.ok, JSON.stringify(run.entries[0]?.errors));
  t.match(run.entries[0]?.images[0], { manifests: 2, blobs: 6 });
  const fetched = new Set(reg.filter({ kind: 'manifest', method: 'GET' }).map((r) => r.path.split('/').pop()));
  t.ok(fetched.has(arm.manifestDigest) && fetched.has(innerArm.manifestDigest));
  t.notOk(fetched.has(amd.manifestDigest) || fetched.has(innerPpc.manifestDigest), 'other platforms are not fetched');
});
