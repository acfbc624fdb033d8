import t, { type Test } from 'tap';
import { ANONYMOUS_IDENTITY, compareSpecificity, ReadPolicy, specificity, type Identity } from '../../src/access/index.js';
import { accessControllerFor } from '../../src/auth/index.js';
import { parseConfig, type RepositoryPattern } from '../../src/config/index.js';
import { parseRepositoryName } from '../../src/oci/index.js';

// The read policy as a table: who may read which repository, from `access` as an operator writes it.

const UPSTREAMS = {
  'docker.io': { url: 'https://hub.example' },
  'ghcr.io': { url: 'https://ghcr.example', username: 'mirror', password: 'p', private: true },
  'quay.io': { url: 'https://quay.example' },
};

function policyFor(access: Record<string, unknown>, tokenPatterns?: Record<string, string[]>): ReadPolicy {
  const config = parseConfig({ upstreams: UPSTREAMS, defaultUpstream: 'docker.io', auth: { groups: { ops: ['olga'], devs: ['dan', 'olga'] } }, access }, { baseDir: '/etc/regmirror', env: {} });
  const patterns = (name: string): RepositoryPattern[] | undefined =>
    tokenPatterns?.[name]?.map((p) => ({ upstream: p.slice(0, p.indexOf('/')), repository: p.slice(p.indexOf('/') + 1) }));
  const { policy } = accessControllerFor(config, { tokenPatterns: patterns });
  if (policy === undefined) throw new Error('auth is configured: a policy is built');
  return policy;
}

const user = (subject: string, groups: string[] = []): Identity => ({ subject, kind: 'user', method: 'basic', groups });
const token = (subject: string): Identity => ({ subject, kind: 'token', method: 'robot', groups: [] });
const anonymous = ANONYMOUS_IDENTITY;
const alice = user('alice');
const bob = user('bob');
const dan = user('dan', ['devs']);
const olga = user('olga', ['ops', 'devs']);

type Row = readonly [who: Identity, repository: string, allowed: boolean, why: string];

function check(t: Test, policy: ReadPolicy, rows: readonly Row[]): void {
  for (const [who, full, allowed, why] of rows) {
    const slash = full.indexOf('/');
    t.equal(policy.canRead(who, full.slice(0, slash), full.slice(slash + 1)), allowed, `${who.subject} ${allowed ? 'may' : 'may not'} read ${full}: ${why}`);
  }
}

t.test('specificity: literal characters first, then fewer ** segments, then fewer *', async (t) => {
  const ordered = ['**', '*', 'team/**', 'team/*', 'team/app-*', 'team/app-web'];
  for (let i = 1; i < ordered.length; i++) {
    t.ok(compareSpecificity(specificity(ordered[i - 1]!), specificity(ordered[i]!)) < 0, `${ordered[i]} is more specific than ${ordered[i - 1]}`);
  }
  t.ok(compareSpecificity(specificity('*/app'), specificity('team/*')) < 0, '3 literal characters lose to 4');
  t.ok(compareSpecificity(specificity('team/**/app'), specificity('team/app')) < 0, 'an exact name beats a glob with as many literal characters');
  t.equal(compareSpecificity(specificity('team/a*'), specificity('team/*b')), 0, 'same counts: one level');
  t.same(specificity('library/*-alpine'), [14, -0, -1]);
});

t.test('auth on means default deny; anonymous patterns let everyone in', async (t) => {
  const policy = policyFor({ anonymous: ['docker.io/library/*'] });
  check(t, policy, [
    [anonymous, 'docker.io/library/alpine', true, 'an anonymous pattern'],
    [alice, 'docker.io/library/alpine', true, 'anonymous patterns admit authenticated identities too'],
    [token('ci'), 'docker.io/library/alpine', true, 'and robot tokens'],
    [anonymous, 'docker.io/team/app', false, 'no pattern matches: denied'],
    [alice, 'quay.io/library/alpine', false, 'patterns are per upstream'],
  ]);
});

t.test('the most specific match wins, and an identity not named there is denied', async (t) => {
  const policy = policyFor({
    anonymous: ['docker.io/**'],
    rules: [
      { repositories: ['docker.io/team/**'], groups: ['devs'] },
      { repositories: ['docker.io/team/secret'], users: ['alice'] },
      { repositories: ['docker.io/team/app-*'], users: ['bob'] },
      { repositories: ['docker.io/team/app-*'], users: ['carol'] },
    ],
  });
  check(t, policy, [
    [anonymous, 'docker.io/library/alpine', true, 'only docker.io/** matches'],
    [anonymous, 'docker.io/team/tool', false, 'team/** is more specific than **, and anonymous is not named there'],
    [dan, 'docker.io/team/tool', true, 'team/** names the devs group'],
    [dan, 'docker.io/team', true, 'team/** includes team itself'],
    [alice, 'docker.io/team/secret', true, 'the exact rule names alice'],
    [dan, 'docker.io/team/secret', false, 'the exact rule does not name dan, though team/** does'],
    [olga, 'docker.io/team/secret', false, 'nor olga'],
    [anonymous, 'docker.io/team/secret', false, 'nor anonymous, though docker.io/** does'],
    [bob, 'docker.io/team/app-web', true, 'team/app-* names bob'],
    [user('carol'), 'docker.io/team/app-web', true, 'equally specific rules are one level: carol too'],
    [dan, 'docker.io/team/app-web', false, 'team/app-* beats team/**'],
    [bob, 'docker.io/team/app', false, 'app-* does not match app: team/** decides, and bob is not a dev'],
  ]);
});

t.test('users, groups and tokens are different kinds of names', async (t) => {
  const policy = policyFor({
    rules: [
      { repositories: ['docker.io/a/*'], users: ['ci'] },
      { repositories: ['docker.io/b/*'], tokens: ['ci'] },
      { repositories: ['docker.io/c/*'], groups: ['ops'] },
    ],
  });
  check(t, policy, [
    [user('ci'), 'docker.io/a/x', true, 'a user named ci'],
    [token('ci'), 'docker.io/a/x', false, 'a token named ci is not the user ci'],
    [token('ci'), 'docker.io/b/x', true, 'tokens: names robot tokens'],
    [user('ci'), 'docker.io/b/x', false, 'and not users'],
    [olga, 'docker.io/c/x', true, 'a member of ops'],
    [dan, 'docker.io/c/x', false, 'not a member of ops'],
    [{ subject: 'cn-olga', kind: 'user', method: 'certificate', groups: ['ops'] }, 'docker.io/c/x', true, 'a certificate identity is a user'],
    [anonymous, 'docker.io/c/x', false, 'anonymous is named by no rule'],
  ]);
});

t.test("a robot token's own --read patterns grant reads, alongside rules naming it", async (t) => {
  const policy = policyFor(
    {
      rules: [
        { repositories: ['docker.io/shared/*'], tokens: ['builder'] },
        { repositories: ['docker.io/team/secret'], users: ['alice'] },
      ],
    },
    { builder: ['docker.io/team/**'], other: ['docker.io/other/*'] },
  );
  check(t, policy, [
    [token('builder'), 'docker.io/team/app', true, 'its own pattern'],
    [token('builder'), 'docker.io/shared/x', true, 'a rule naming it'],
    [token('builder'), 'docker.io/team/secret', false, 'a more specific rule that does not name it decides'],
    [token('other'), 'docker.io/team/app', false, "another token's patterns are not its own"],
    [user('builder'), 'docker.io/team/app', false, 'a user with the same name is not the token'],
    [token('nobody'), 'docker.io/team/app', false, 'a token without patterns or rules reads nothing'],
    [token('builder'), 'quay.io/team/app', false, 'its patterns are per upstream'],
  ]);
});

t.test('a private upstream allows no anonymous read, whatever access.anonymous says', async (t) => {
  const policy = policyFor({ anonymous: ['ghcr.io/**', 'quay.io/public/*'], rules: [{ repositories: ['ghcr.io/team/*'], users: ['alice'] }] });
  check(t, policy, [
    [anonymous, 'ghcr.io/team/app', false, 'ghcr.io is private'],
    [anonymous, 'ghcr.io/other/app', false, 'even where only the anonymous pattern matches'],
    [bob, 'ghcr.io/other/app', false, 'the ignored pattern admits no one'],
    [alice, 'ghcr.io/team/app', true, 'rules still apply on a private upstream'],
    [anonymous, 'quay.io/public/x', true, 'other upstreams keep their anonymous patterns'],
  ]);
  t.same(policy.ignoredAnonymous, [{ upstream: 'ghcr.io', repository: '**' }]);
});

t.test('patterns are matched against resolved names: library/ applies, aliases resolve', async (t) => {
  const policy = policyFor({ anonymous: ['docker.io/alpine'] });
  check(t, policy, [
    [anonymous, 'docker.io/library/alpine', true, '"alpine" on docker.io means library/alpine, as a pull does'],
    [anonymous, 'docker.io/alpine', false, 'the unresolved name is never asked for'],
  ]);
});

t.test('access.admin: users and groups, never tokens or anonymous', async (t) => {
  const policy = policyFor({ admin: { users: ['alice'], groups: ['ops'] }, metrics: 'admin' });
  t.ok(policy.isAdmin(alice));
  t.ok(policy.isAdmin(olga), 'through a group');
  t.notOk(policy.isAdmin(dan));
  t.notOk(policy.isAdmin(token('alice')), 'a token named like an admin is not one');
  t.notOk(policy.isAdmin(anonymous));
  t.equal(policy.metricsOpen, false);
  t.equal(policyFor({}).metricsOpen, true, 'metrics default to anonymous');
});

t.test('without auth there is no policy: everyone reads everything, as before', async (t) => {
  const config = parseConfig({ upstreams: { 'docker.io': { url: 'https://hub.example' } } }, { baseDir: '/x', env: {} });
  const { controller, policy } = accessControllerFor(config);
  t.equal(policy, undefined);
  t.ok(controller.canRead({ principal: 'anonymous' }, 'docker.io', parseRepositoryName('team/secret')));
});
