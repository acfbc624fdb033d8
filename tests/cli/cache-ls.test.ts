import t from 'tap';
import { regmirror } from '../fixtures/regmirror-process.js';
import { listedStorage } from '../fixtures/cache-cli.js';
import type { LsResult } from '../../src/admin/index.js';

// `regmirror cache ls` as an operator runs it (child processes, the storage to themselves): the
// columns, a sync told apart from a client pull, a pattern, --incomplete. Without a config or its
// secrets, and prune's notes: cache-ls-alone.test.ts.

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
const DIGEST = 'sha256:[0-9a-f]{12}';

t.test('cache ls: COMPLETE, PINNED, SYNCED, LAST PULLED, a pattern, --incomplete', async (t) => {
  const { config } = await listedStorage(t);
  const ls = await regmirror(['cache', 'ls', '--config', config]);
  t.equal(ls.code, 0, ls.stderr);
  t.equal(ls.stderr, '', 'no note: the config names every pin');
  t.match(ls.stdout, /^REPOSITORY +TAG +DIGEST +SIZE +COMPLETE +PINNED +SYNCED +LAST PULLED\n/);
  t.match(ls.stdout, new RegExp(`^docker\\.io/other/tool +latest +${DIGEST} +[\\d.]+ KiB +2/2 layers +yes +${ISO} +never$`, 'm'), 'synced, never pulled by a client');
  t.match(ls.stdout, new RegExp(`^docker\\.io/team/app +v1 +${DIGEST} +[\\d.]+ KiB +2/2 layers +yes +no +${ISO}$`, 'm'), 'pulled, never synced');
  t.match(ls.stdout, new RegExp(`^docker\\.io/team/big +v1 +${DIGEST} +[\\d.]+ KiB +1/2 layers +yes +no +${ISO}$`, 'm'), 'one layer of two');

  const incomplete = await regmirror(['cache', 'ls', '--incomplete', '--config', config]);
  t.equal(incomplete.code, 0, incomplete.stderr);
  t.match(incomplete.stdout, /^1 tag; /m);
  t.notMatch(incomplete.stdout, /team\/app|other\/tool/, 'complete images are left out');

  const team = await regmirror(['cache', 'ls', 'team/*', '--json', '--config', config]);
  const listed = JSON.parse(team.stdout) as LsResult;
  t.same(
    listed.tags.map((e) => [e.repository, e.complete, e.layers, e.pinned, e.lastSynced]),
    [
      ['team/app', true, { cached: 2, total: 2 }, true, null],
      ['team/big', false, { cached: 1, total: 2 }, true, null],
    ],
    '--json carries the same fields',
  );

  const bad = await regmirror(['cache', 'ls', 'lib**', '--config', config]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^regmirror: cache ls: PATTERN: "\*\*" must be a whole segment in "lib\*\*" \(e\.g\. "team\/\*\*"/);
  t.equal(bad.stderr.split('\n').length, 2, 'one line');
});
