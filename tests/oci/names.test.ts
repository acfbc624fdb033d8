import t from 'tap';
import { officialName, parseReference, parseRepositoryName, parseTag, referenceString } from '../../src/oci/index.js';

const hex64 = '9'.repeat(64);

const validNames = [
  'a',
  'alpine',
  'library/alpine',
  'a/b/c/d/e',
  'my-app',
  'my--app',
  'my---app',
  'a.b',
  'a_b',
  'a__b',
  'a.b-c_d__e',
  '0',
  '123/456',
  'ghcr.io',
  'a/manifests/b',
  'a/blobs/tags',
  'x'.repeat(255),
  `${'a/'.repeat(127)}a`, // 255 chars
];

const invalidNames: [string, string, RegExp][] = [
  ['empty', '', /empty/],
  ['uppercase', 'Alpine', /lowercase/],
  ['uppercase component', 'library/Alpine', /lowercase/],
  ['dot', '.', /components/],
  ['dotdot', '..', /components/],
  ['dotdot component', 'a/../b', /components/],
  ['empty component', 'a//b', /components/],
  ['leading slash', '/a', /components/],
  ['trailing slash', 'a/', /components/],
  ['percent', 'a%2eb', /components/],
  ['encoded dotdot', '%2e%2e', /components/],
  ['256 chars', 'x'.repeat(256), /256 characters long/],
  ['triple underscore', 'a___b', /components/],
  ['leading dash', '-a', /components/],
  ['trailing dash', 'a-', /components/],
  ['leading underscore', '_a', /components/],
  ['trailing dot', 'a.', /components/],
  ['double dot', 'a..b', /components/],
  ['dot dash', 'a.-b', /components/],
  ['colon', 'a:b', /components/],
  ['port', 'localhost:5000/a', /components/],
  ['space', 'a b', /components/],
  ['at', 'a@sha256', /components/],
  ['backslash', 'a\\b', /components/],
  ['newline', 'a\n', /components/],
  ['unicode', 'ä', /components/],
];

t.test('valid repository names', async (t) => {
  for (const name of validNames) t.equal(parseRepositoryName(name), name, name.slice(0, 40));
});

t.test('invalid repository names', async (t) => {
  for (const [label, value, message] of invalidNames) {
    t.throws(() => parseRepositoryName(value), { name: 'OciError', code: 'NAME_INVALID', status: 400, message }, label);
  }
});

t.test('a long pathological name is refused quickly, by length', async (t) => {
  t.throws(() => parseRepositoryName(`${'a-'.repeat(5000)}!`), { code: 'NAME_INVALID', message: /characters long/ });
  // Within the limit the grammar must still fail without catastrophic backtracking.
  t.throws(() => parseRepositoryName(`${'a-'.repeat(120)}!`), { code: 'NAME_INVALID' });
});

const validTags = ['latest', 'Latest', 'v1.2.3', '1.0', '_', '_hidden', '9', 'a-b_c.d', `a${'b'.repeat(127)}`, 'sha256-abc'];
const invalidTags: [string, string][] = [
  ['empty', ''],
  ['129 chars', 'a'.repeat(129)],
  ['leading dot', '.a'],
  ['leading dash', '-a'],
  ['slash', 'a/b'],
  ['colon', 'a:b'],
  ['plus', 'v1+build'],
  ['space', 'a b'],
  ['percent', 'a%20b'],
  ['at', 'a@b'],
  ['newline', 'a\n'],
];

t.test('tags', async (t) => {
  for (const tag of validTags) t.equal(parseTag(tag), tag);
  for (const [label, value] of invalidTags) {
    t.throws(() => parseTag(value), { name: 'OciError', code: 'TAG_INVALID', status: 400 }, label);
  }
});

t.test('references', async (t) => {
  t.same(parseReference('latest'), { kind: 'tag', tag: 'latest' });
  t.same(parseReference(`sha256:${hex64}`), { kind: 'digest', digest: `sha256:${hex64}` });
  t.throws(() => parseReference('sha256:abc'), { code: 'DIGEST_INVALID' });
  t.throws(() => parseReference('a:b'), { code: 'DIGEST_INVALID' }, 'a colon makes it a digest');
  t.throws(() => parseReference(''), { code: 'TAG_INVALID' });
  t.throws(() => parseReference('-x'), { code: 'TAG_INVALID' });
  for (const value of ['v1', `sha512:${'a'.repeat(128)}`]) {
    t.equal(referenceString(parseReference(value)), value);
  }
});

t.test('officialName: one-segment names and globs get library/, names of any depth do not', async (t) => {
  const cases: Array<[string, string]> = [
    ['alpine', 'library/alpine'],
    ['ngin*', 'library/ngin*'],
    ['*', 'library/*'],
    ['**', '**'],
    ['library/alpine', 'library/alpine'],
    ['team/*', 'team/*'],
    ['', ''],
  ];
  for (const [name, official] of cases) t.equal(officialName(name, true), official, name);
  t.equal(officialName('alpine', false), 'alpine', 'only on an upstream with library');
});
