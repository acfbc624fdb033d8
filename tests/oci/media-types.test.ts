import t from 'tap';
import {
  acceptsMediaType,
  isIndexMediaType,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseAccept,
  stripMediaTypeParams,
} from '../../src/oci/index.js';

t.test('constants', async (t) => {
  t.equal(MAX_MANIFEST_BYTES, 4 * 1024 * 1024);
  t.equal(MediaType.ociManifest, 'application/vnd.oci.image.manifest.v1+json');
  t.equal(MediaType.ociIndex, 'application/vnd.oci.image.index.v1+json');
  t.equal(MediaType.dockerManifest, 'application/vnd.docker.distribution.manifest.v2+json');
  t.equal(MediaType.dockerManifestList, 'application/vnd.docker.distribution.manifest.list.v2+json');
  t.equal(MediaType.dockerSchema1, 'application/vnd.docker.distribution.manifest.v1+json');
  t.equal(MediaType.dockerSchema1Signed, 'application/vnd.docker.distribution.manifest.v1+prettyjws');
  t.equal(MediaType.dockerLayerGzip, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  t.same([...MANIFEST_MEDIA_TYPES].sort(), [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.ociIndex, MediaType.ociManifest].sort());
  t.notOk(MANIFEST_MEDIA_TYPES.includes(MediaType.dockerSchema1Signed), 'schema1 is never requested upstream');
  t.ok(Object.isFrozen(MANIFEST_MEDIA_TYPES));
});

const dockerd = [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.ociIndex, MediaType.ociManifest];

const acceptCases: [string, string | readonly string[] | undefined, string[]][] = [
  ['absent', undefined, []],
  ['empty string', '', []],
  ['empty list', [], []],
  ['only commas and spaces', ' , ,, ', []],
  ['single', 'application/json', ['application/json']],
  ['containerd resolve line', `${dockerd.join(', ')}, */*`, [...dockerd, '*/*']],
  ['dockerd repeated lines', dockerd, dockerd],
  ['repeated lines with commas inside', ['a/b, c/d', 'e/f'], ['a/b', 'c/d', 'e/f']],
  ['params and q stripped', 'a/b;q=0.5, c/d ; charset=utf-8,e/f;q=0', ['a/b', 'c/d', 'e/f']],
  ['lowercased and trimmed', '  Application/JSON  ,TEXT/Plain', ['application/json', 'text/plain']],
  ['deduped across lines and params', ['a/b', 'A/B;q=1', 'a/b '], ['a/b']],
  ['empty element dropped', 'a/b,,c/d,', ['a/b', 'c/d']],
  ['param-only element dropped', ';q=1, a/b', ['a/b']],
];

t.test('parseAccept', async (t) => {
  for (const [label, header, want] of acceptCases) t.same(parseAccept(header), want, label);
});

const acceptsCases: [string, string[], string, boolean][] = [
  ['empty accept takes anything', [], MediaType.ociIndex, true],
  ['*/*', ['*/*'], MediaType.ociIndex, true],
  ['type/*', ['application/*'], MediaType.ociIndex, true],
  ['other type/*', ['text/*'], MediaType.ociIndex, false],
  ['exact', [MediaType.ociManifest, MediaType.ociIndex], MediaType.ociIndex, true],
  ['missing', [MediaType.dockerManifest, MediaType.ociManifest], MediaType.ociIndex, false],
  ['application/json is not a wildcard', ['application/json'], MediaType.dockerManifest, false],
  ['media type with params and case', [MediaType.ociIndex], 'Application/vnd.oci.image.index.v1+json; charset=utf-8', true],
  ['media type without slash', ['application/*'], 'weird', false],
  ['empty media type, empty accept', [], '', true],
];

t.test('acceptsMediaType', async (t) => {
  for (const [label, accept, type, want] of acceptsCases) t.equal(acceptsMediaType(accept, type), want, label);
});

t.test('isIndexMediaType', async (t) => {
  t.equal(isIndexMediaType(MediaType.ociIndex), true);
  t.equal(isIndexMediaType(MediaType.dockerManifestList), true);
  t.equal(isIndexMediaType(`${MediaType.ociIndex}; charset=utf-8`), true);
  t.equal(isIndexMediaType(MediaType.ociManifest), false);
  t.equal(isIndexMediaType(MediaType.dockerManifest), false);
  t.equal(isIndexMediaType(''), false);
});

t.test('stripMediaTypeParams', async (t) => {
  const cases: [string, string][] = [
    ['a/b; charset=x', 'a/b'],
    ['A/B', 'a/b'],
    ['  a/b  ;q=1', 'a/b'],
    ['a/b', 'a/b'],
    ['', ''],
    [';x=y', ''],
  ];
  for (const [input, want] of cases) t.equal(stripMediaTypeParams(input), want, input);
});
