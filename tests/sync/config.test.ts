import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { syncPinPatterns } from '../../src/sync/index.js';

const base = { upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' }, 'ghcr.io': { url: 'https://ghcr.io' } }, defaultUpstream: 'docker.io' };
const parse = (sync: unknown) => parseConfig({ ...base, sync }, { baseDir: '/tmp', env: {} });

t.test('a full entry parses, with defaults and Docker Hub library names', async (t) => {
  const c = parse({
    concurrency: 2,
    rateLimitReserve: 5,
    jitter: '10s',
    entries: [
      { repository: 'alpine', tags: { semver: '>=3.19 <4', latest: 2, exclude: '-rc' }, platforms: ['linux/amd64', 'linux/arm64/v8'], schedule: '6h', prune: true },
      { name: 'team', upstream: 'ghcr.io', repository: 'team/**', tags: ['v1'], schedule: '0 3 * * *', runOnStart: true },
    ],
  });
  t.equal(c.sync.concurrency, 2);
  t.equal(c.sync.rateLimitReserve, 5);
  t.equal(c.sync.jitterMs, 10_000);
  const [a, b] = c.sync.entries;
  t.match(a, { name: 'docker.io/library/alpine', upstream: 'docker.io', repository: 'library/alpine', isPattern: false, prune: true, runOnStart: false });
  t.same(a?.schedule, { kind: 'interval', ms: 6 * 3_600_000 });
  t.equal(a?.tags.semver, '>=3.19 <4');
  t.ok(a?.tags.exclude?.test('3.20-rc1'));
  t.match(b, { name: 'team', upstream: 'ghcr.io', repository: 'team/**', isPattern: true, runOnStart: true, schedule: { kind: 'cron' } });
  t.same(b?.tags.exact, ['v1']);
  t.same(syncPinPatterns(c.sync), [
    { upstream: 'docker.io', repository: 'library/alpine' },
    { upstream: 'ghcr.io', repository: 'team/**' },
  ]);
});

t.test('no sync section: no entries; a bare list is the entries', async (t) => {
  t.same(parse(undefined).sync.entries, []);
  t.same(parse([{ repository: 'library/nginx' }]).sync.entries[0]?.tags.exact, ['latest']);
});

t.test('every bad sync line is one ConfigError naming the entry and key', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ entries: [{ repository: 'a/b', tags: { include: '([' } }] }, /^sync\.entries\[0\] \(docker\.io\/a\/b\)\.tags\.include: invalid regular expression/],
    [{ entries: [{ repository: 'a/b', tags: { exclude: '*x' } }] }, /tags\.exclude: invalid regular expression/],
    [{ entries: [{ repository: 'a/b', schedule: '61 * * * *' }] }, /^sync\.entries\[0\] \(docker\.io\/a\/b\)\.schedule: "61 \* \* \* \*" is neither an interval/],
    [{ entries: [{ repository: 'a/b', schedule: 'every day' }] }, /\.schedule: /],
    [{ entries: [{ repository: 'a/b', schedule: '10ms' }] }, /\.schedule: an interval must be at least/],
    [{ entries: [{ upstream: 'quay.io', repository: 'a/b' }] }, /^sync\.entries\[0\]\.upstream: "quay\.io" is not a configured upstream \(docker\.io, ghcr\.io\)/],
    [{ entries: [{ repository: 'a/b', tags: { semver: 'not a range' } }] }, /\.tags\.semver: "not a range" is not a semver range/],
    [{ entries: [{ repository: 'a/b', tags: { latest: 0 } }] }, /\.tags\.latest: must be an integer from 1/],
    [{ entries: [{ repository: 'a/b', tags: {} }] }, /\.tags: selects nothing/],
    [{ entries: [{ repository: 'a/b', tags: { exact: ['bad tag'] } }] }, /\.tags\.exact: must be a list of tag names/],
    [{ entries: [{ repository: 'a/b', tags: { newest: 1 } }] }, /\.tags\.newest: unknown key/],
    [{ entries: [{ repository: 'a/b', platforms: ['amd64'] }] }, /\.platforms: "amd64" is not "os\/architecture/],
    [{ entries: [{ repository: 'A/B' }] }, /^sync\.entries\[0\]\.repository: "A\/B" is not a valid repository name/],
    [{ entries: [{ repository: 'a//*' }] }, /\.repository: empty segment in "a\/\/\*"/],
    // The storage.pin grammar: sync's repositories join the pins.
    [{ entries: [{ repository: 'team/ap?' }] }, /\.repository: "team\/ap\?" is not a valid repository name/],
    [{ entries: [{ repository: 'a/b', prune: 'yes' }] }, /\.prune: must be true or false/],
    [{ entries: [{ repository: 'a/b', when: 'now' }] }, /^sync\.entries\[0\]\.when: unknown key/],
    [{ entries: [{ repository: 'a/b' }, { repository: 'a/b' }] }, /^sync\.entries\[1\]\.name: "docker\.io\/a\/b" names another entry/],
    [{ concurrency: 0, entries: [] }, /^sync\.concurrency: must be an integer from 1/],
    [{ jitter: 'soon' }, /^sync\.jitter: must be a duration/],
    [{ entries: {} }, /^sync\.entries: must be a list/],
    ['often', /^sync: must be an object/],
  ];
  for (const [sync, message] of cases) {
    try {
      parse(sync);
      t.fail(`accepted ${JSON.stringify(sync)}`);
    } catch (err) {
      t.type(err, ConfigError);
      t.match((err as Error).message, message);
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  }
});
