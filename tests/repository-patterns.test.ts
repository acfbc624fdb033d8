import t from 'tap';
import { repoMatcher } from '../src/admin/index.js';
import { parseConfig } from '../src/config/index.js';
import { PinSet } from '../src/mirror/index.js';
import { RepositoryGlobError } from '../src/oci/index.js';
import { entryRepositories, selectEntries } from '../src/sync/index.js';

// One grammar, four consumers: each is reached through the entry point an operator's text goes
// through (the config loader, `sync --only`, `cache prune --repo`), so a consumer that grows its
// own glob engine fails here.

const upstreams = { 'docker.io': { url: 'https://hub.example' }, 'ghcr.io': { url: 'https://ghcr.example' } };
const load = (more: object) => parseConfig({ upstreams, defaultUpstream: 'docker.io', ...more }, { baseDir: '/srv', env: {} });

const pinSelects = (upstream: string, pattern: string, repository: string): boolean =>
  new PinSet(load({ storage: { pin: [`${upstream}/${pattern}`] } }).storage.pin).matches(upstream, repository);

async function syncEntrySelects(upstream: string, pattern: string, repository: string): Promise<boolean> {
  const entry = load({ sync: [{ upstream, repository: pattern }] }).sync.entries[0];
  if (entry === undefined) throw new Error('no entry');
  return (await entryRepositories(entry, async () => [repository])).includes(repository);
}

/** `--only` over an entry with the default name, which is `<upstream>/<repository>`. */
const onlySelects = (pattern: string, upstream: string, repository: string): boolean =>
  selectEntries([{ name: `${upstream}/${repository}`, upstream, repository }], pattern).length === 1;

const pruneSelects = (pattern: string, upstream: string, repository: string): boolean => repoMatcher(pattern)({ upstream, repository });

const CASES: Array<[string, string, boolean]> = [
  ['team/app', 'team/app', true],
  ['team/ap', 'team/app', false],
  ['team.x/*', 'teamyx/a', false],
  ['library/*', 'library/alpine', true],
  ['library/*', 'library/a/b', false],
  ['library/*', 'library', false],
  ['team/*-base', 'team/node-base', true],
  ['team/*-base', 'team/node-base-x', false],
  ['team/**', 'team', true],
  ['team/**', 'team/a/b/c', true],
  ['team/**', 'teams/a', false],
  ['a/**/z', 'a/z', true],
  ['a/**/z', 'a/b/c/z', true],
  ['a/**/z', 'a/b/c/y', false],
  ['**/cache', 'cache', true],
  ['**/cache', 'a/cachex', false],
  ['**', 'any/depth/at/all', true],
];

t.test('pins, sync entries, --only and prune --repo select the same repositories', async (t) => {
  for (const [pattern, repository, expected] of CASES) {
    const at = `${pattern} ~ ${repository}`;
    t.equal(pinSelects('ghcr.io', pattern, repository), expected, `pin ${at}`);
    t.equal(await syncEntrySelects('ghcr.io', pattern, repository), expected, `sync entry ${at}`);
    t.equal(onlySelects(pattern, 'ghcr.io', repository), expected, `--only ${at}`);
    t.equal(onlySelects(`ghcr.io/${pattern}`, 'ghcr.io', repository), expected, `--only ghcr.io/${at}`);
    t.equal(pruneSelects(pattern, 'ghcr.io', repository), expected, `--repo ${at}`);
    t.equal(pruneSelects(`ghcr.io/${pattern}`, 'ghcr.io', repository), expected, `--repo ghcr.io/${at}`);
  }
  t.notOk(pruneSelects('docker.io/**', 'ghcr.io', 'team/app'), 'a named upstream excludes the others');
  t.ok(pruneSelects('localhost:5000/team/*', 'localhost:5000', 'team/app'), 'an upstream with a port');
});

t.test('a pattern outside the grammar is refused by every consumer, naming where it came from', async (t) => {
  for (const bad of ['lib**', 'team/ap?', 'a//b', 'Team/*', 'a/[ab]*', '', '/a']) {
    t.throws(() => load({ storage: { pin: [`ghcr.io/${bad}`] } }), { name: 'ConfigError', key: 'storage.pin[0]' }, `pin ${bad}`);
    t.throws(() => load({ sync: [{ upstream: 'ghcr.io', repository: bad }] }), { name: 'ConfigError', key: 'sync.entries[0].repository' }, `sync entry ${bad}`);
    t.throws(() => onlySelects(bad, 'ghcr.io', 'team/app'), RepositoryGlobError, `--only ${bad}`);
    t.throws(() => pruneSelects(bad, 'ghcr.io', 'team/app'), RepositoryGlobError, `--repo ${bad}`);
  }
});

t.test('--only still takes an entry name that is no glob', async (t) => {
  const entries = [{ name: 'Nightly?', upstream: 'ghcr.io', repository: 'team/app' }];
  t.same(selectEntries(entries, 'Nightly?'), entries);
});

t.test('library/: a pin and a sync entry of the same text select the same Docker Hub repositories', async (t) => {
  const repositories = ['library/alpine', 'alpine', 'library/nginx', 'library/nginx-unprivileged', 'team/app', 'team/app/x'];
  const cases: Array<[string, string[]]> = [
    ['alpine', ['library/alpine']],
    ['ngin*', ['library/nginx', 'library/nginx-unprivileged']],
    ['*', ['library/alpine', 'library/nginx', 'library/nginx-unprivileged']],
    ['team/*', ['team/app']],
    ['**', repositories],
  ];
  for (const [pattern, expected] of cases) {
    const pinned = repositories.filter((r) => pinSelects('docker.io', pattern, r));
    const synced: string[] = [];
    for (const r of repositories) if (await syncEntrySelects('docker.io', pattern, r)) synced.push(r);
    t.same(pinned, expected, `pin docker.io/${pattern}`);
    t.same(synced, expected, `sync entry ${pattern}`);
  }
});
