import t from 'tap';
import { buildIndex, quickImage } from '../fixtures/images.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';

// `regmirror sync --dry-run` as an operator checks a config: every tag resolved upstream with a
// HEAD, what would be downloaded counted from the real manifests, and a problem is a failure.

t.test('a cold dry run counts the real platforms, blobs and bytes; after a run it is up to date with HEADs only', async (t) => {
  const amd = quickImage('dry-amd', { architecture: 'amd64' });
  const arm = quickImage('dry-arm', { architecture: 'arm64' });
  const index = buildIndex([amd, arm]);
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ name: 'multi', upstream: UP, repository: 'team/multi', tags: ['1'], platforms: ['linux/arm64'] }] });
  reg.pushIndex('team/multi', '1', index);
  const armBytes = arm.config.size + arm.layers.reduce((n, l) => n + l.size, 0);

  const cold = await mirror.app.sync.run({ dryRun: true });
  t.ok(cold.ok, JSON.stringify(cold.entries[0]?.errors));
  t.match(cold.entries[0]?.images, [{ tag: '1', status: 'planned', digest: index.manifestDigest, manifests: 1, blobs: 3, bytes: armBytes, wouldDownload: { blobs: 3, bytes: armBytes } }]);
  t.equal(reg.count({ kind: 'manifest', method: 'HEAD' }), 1, 'the tag resolved with one HEAD');
  t.same(reg.filter({ kind: 'manifest', method: 'GET' }).map((r) => r.path.split('/').pop()), [index.manifestDigest, arm.manifestDigest], 'manifests not held are read by digest (the index and the arm64 child only)');
  t.equal(reg.count({ kind: 'blob' }), 0, 'no blob is touched');

  t.ok((await mirror.app.sync.run()).ok);
  reg.resetRequests();
  const warm = await mirror.app.sync.run({ dryRun: true });
  t.ok(warm.ok);
  t.match(warm.entries[0]?.images, [{ status: 'up-to-date', manifests: 1, blobs: 3, wouldDownload: { blobs: 0, bytes: 0 } }]);
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 0, 'held manifests are read here: no GET counts against a pull limit');
  t.equal(reg.count({ kind: 'manifest', method: 'HEAD' }), 1);

  // The tag moves upstream: the dry run sees it at once (a HEAD, not the cached tag).
  const next = quickImage('dry-arm-2', { architecture: 'arm64' });
  reg.pushIndex('team/multi', '1', buildIndex([amd, next]));
  const moved = await mirror.app.sync.run({ dryRun: true });
  t.match(moved.entries[0]?.images, [{ status: 'planned', wouldDownload: { blobs: 3 } }]);
});

t.test('a misspelled repository, a missing tag and a dead upstream fail the dry run; a filter that matches nothing warns', async (t) => {
  const { reg, mirror } = await startSyncWorld(t, {
    sync: {
      retries: 0,
      entries: [
        { name: 'typo', upstream: UP, repository: 'team/ap', tags: ['1'] },
        { name: 'typo-filtered', upstream: UP, repository: 'team/ap', tags: { semver: '^1' } },
        { name: 'missing-tag', upstream: UP, repository: 'team/app', tags: ['9.9'] },
        { name: 'missing-exact', upstream: UP, repository: 'team/app', tags: { exact: ['9.9'], include: '^1' } },
        { name: 'no-match', upstream: UP, repository: 'team/app', tags: { semver: '>=5' } },
        { name: 'fine', upstream: UP, repository: 'team/app', tags: ['1'] },
      ],
    },
  });
  reg.pushImage('team/app', '1', quickImage('dry-problems'));
  const run = await mirror.app.sync.run({ dryRun: true });
  t.notOk(run.ok, 'any problem fails the dry run (the CLI exits 1)');
  const by = Object.fromEntries(run.entries.map((e) => [e.job, e]));
  t.match(by['typo'], { result: 'failure', images: [{ tag: '1', status: 'not-found', error: /registry\.test\/team\/ap:1 not found upstream/ }] });
  t.match(by['typo-filtered'], { result: 'failure', errors: [/repository team\/ap not found on registry\.test/] });
  t.match(by['missing-tag'], { result: 'failure', images: [{ tag: '9.9', status: 'not-found' }] });
  t.match(by['missing-exact'], { result: 'failure', images: [{ tag: '9.9', status: 'not-found', error: 'tag 9.9 not found upstream' }, { tag: '1', status: 'planned' }] });
  t.match(by['no-match'], { result: 'success', images: [], warnings: [/no tag of team\/app matches the tag filter \(semver >=5\) \(1 tags upstream\)/] });
  t.match(by['fine'], { result: 'success', warnings: [], images: [{ status: 'planned' }] });

  await reg.stop();
  const dead = await mirror.app.sync.run({ only: 'fine', dryRun: true });
  t.notOk(dead.ok, 'a dead upstream is a failure, not an empty success');
  t.equal(dead.entries[0]?.errors.length, 1);
});

t.test('problems reach the progress listener once each, as they happen', async (t) => {
  const { reg, mirror } = await startSyncWorld(t, {
    sync: [
      { name: 'typo', upstream: UP, repository: 'team/ap', tags: ['1'] },
      { name: 'no-match', upstream: UP, repository: 'team/app', tags: { include: '^v' } },
    ],
  });
  reg.pushImage('team/app', '1', quickImage('dry-notes'));
  const notes: string[] = [];
  const progress = { imageStarted: () => {}, blobDone: () => {}, imageFinished: () => {}, note: (job: string, level: string, message: string) => notes.push(`${level} ${job}: ${message}`) };
  await mirror.app.sync.run({ dryRun: true, progress });
  t.same(notes.sort(), ['error typo: team/ap:1: registry.test/team/ap:1 not found upstream (check the repository name and the tag)', 'warning no-match: no tag of team/app matches the tag filter (include ^v) (1 tags upstream)']);
  t.ok(mirror.logs.some((l) => l.includes('the tag filter matched no upstream tag')));
});

t.test('a registry whose HEAD leaves out the digest is asked a GET; a warm dry run spends no pull budget', async (t) => {
  const img = quickImage('dry-no-digest');
  const { reg, mirror } = await startSyncWorld(t, { registry: { rateLimit: { limit: 100, remaining: 100 } }, sync: [{ upstream: UP, repository: 'team/app', tags: ['1'] }] });
  reg.pushImage('team/app', '1', img);
  t.ok((await mirror.app.sync.run()).ok);
  const before = reg.rateLimit?.remaining;
  t.match((await mirror.app.sync.run({ dryRun: true })).entries[0]?.images, [{ status: 'up-to-date' }]);
  t.equal(reg.rateLimit?.remaining, before, 'HEADs only: the pull budget is untouched');

  reg.inject({ match: { kind: 'manifest', method: 'HEAD' }, type: 'no-head-digest', times: 1 });
  reg.resetRequests();
  t.match((await mirror.app.sync.run({ dryRun: true })).entries[0]?.images, [{ status: 'up-to-date', digest: img.manifestDigest }]);
  t.same(reg.filter({ kind: 'manifest' }).map((r) => r.method), ['HEAD', 'GET'], 'the GET by tag says what HEAD did not');
});
