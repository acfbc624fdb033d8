import t from 'tap';
import { parseConfig, type TagFilter } from '../../src/config/index.js';
import { nextSlot, selectTags, tagVersion } from '../../src/sync/index.js';

const filter = (tags: unknown): TagFilter => {
  const c = parseConfig({ upstreams: { r: { url: 'http://127.0.0.1:1' } }, sync: [{ repository: 'a/b', tags }] }, { baseDir: '/tmp', env: {} });
  const e = c.sync.entries[0];
  if (e === undefined) throw new Error('no entry');
  return e.tags;
};

const TAGS = ['latest', '1', '1.24', '1.24.3', '1.25.0', '1.25.1', '1.26.0-rc.1', '1.25-alpine', '2.0.0', 'v2.1.0', 'edge'];

t.test('tag filters', async (t) => {
  t.same(selectTags(filter(['1.24', 'missing']), TAGS), ['1.24'], 'exact: only names upstream has');
  t.same(selectTags(filter({ include: '^1\\.25' }), TAGS), ['1.25-alpine', '1.25.0', '1.25.1']);
  t.same(selectTags(filter({ include: '^1\\.25', exclude: 'alpine' }), TAGS), ['1.25.0', '1.25.1']);
  t.same(selectTags(filter({ semver: '>=1.25 <2' }), TAGS), ['1.25.0', '1.25.1'], 'prereleases and variants are not in a range');
  t.same(selectTags(filter({ latest: 2 }), TAGS), ['2.0.0', 'v2.1.0']);
  t.same(selectTags(filter({ semver: '<2', latest: 2 }), TAGS), ['1.25.0', '1.25.1']);
  t.same(selectTags(filter({ semver: '^1', latest: 1, exact: ['edge'] }), TAGS), ['1.25.1', 'edge'], 'exact is added to the rest');
  t.same(selectTags(filter({ exclude: '.' }), TAGS), []);
});

t.test('tag versions and schedule slots', async (t) => {
  t.equal(tagVersion('1.25')?.version, '1.25.0');
  t.equal(tagVersion('v2.1.0')?.version, '2.1.0');
  t.equal(tagVersion('1.25-alpine'), undefined);
  t.equal(tagVersion('latest'), undefined);
  const t0 = Date.UTC(2026, 0, 1, 0, 0, 0);
  t.equal(nextSlot({ kind: 'cron', expression: '0 3 * * *' }, t0, undefined), Date.UTC(2026, 0, 1, 3));
  t.equal(nextSlot({ kind: 'interval', ms: 60_000 }, t0, undefined), t0 + 60_000);
  t.equal(nextSlot({ kind: 'interval', ms: 60_000 }, t0 + 150_000, t0), t0 + 180_000, 'missed slots are skipped');
});
