import t from 'tap';
import { childDescriptors, MAX_MANIFEST_BYTES, MediaType, parseManifest } from '../../src/oci/index.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const enc = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

const config = { mediaType: MediaType.ociConfig, digest: d('c'), size: 123 };
const layer = { mediaType: MediaType.ociLayerGzip, digest: d('1'), size: 1000 };
const ociImage = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer, { ...layer, digest: d('2'), size: 0 }] };
const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    { mediaType: MediaType.ociManifest, digest: d('a'), size: 500, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MediaType.ociManifest, digest: d('b'), size: 501, platform: { os: 'linux', architecture: 'arm', variant: 'v7', 'os.features': ['x'] } },
    {
      mediaType: MediaType.ociManifest,
      digest: d('e'),
      size: 502,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
    { mediaType: 'application/vnd.example.unknown+json', digest: d('f'), size: 7, artifactType: 'application/vnd.example.sbom' },
  ],
};
const dockerImage = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifest,
  config: { mediaType: MediaType.dockerConfig, digest: d('c'), size: 10 },
  layers: [{ mediaType: MediaType.dockerLayerGzip, digest: d('1'), size: 20 }],
};
const dockerList = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifestList,
  manifests: [{ mediaType: MediaType.dockerManifest, digest: d('a'), size: 5, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
};
const schema1 = { schemaVersion: 1, name: 'library/old', tag: 'latest', architecture: 'amd64', fsLayers: [{ blobSum: d('1') }], history: [] };

t.test('OCI image manifest', async (t) => {
  const m = parseManifest(enc(ociImage), MediaType.ociManifest);
  t.equal(m.kind, 'image');
  t.equal(m.mediaType, MediaType.ociManifest);
  t.same(m.config, config);
  t.same(m.layers, [layer, { ...layer, digest: d('2'), size: 0 }]);
  t.same(m.manifests, []);
  t.equal(m.subject, undefined);
});

t.test('OCI index with platforms', async (t) => {
  const m = parseManifest(enc(ociIndex), `${MediaType.ociIndex}; charset=utf-8`);
  t.equal(m.kind, 'index');
  t.equal(m.mediaType, MediaType.ociIndex);
  t.equal(m.config, undefined);
  t.same(m.layers, []);
  t.equal(m.manifests.length, 4);
  t.same(m.manifests[0], { mediaType: MediaType.ociManifest, digest: d('a'), size: 500, platform: { os: 'linux', architecture: 'amd64' } });
  t.same(m.manifests[1]?.platform, { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.same(m.manifests[2]?.platform, { os: 'unknown', architecture: 'unknown' });
  t.equal(m.manifests[3]?.artifactType, 'application/vnd.example.sbom', 'unknown child media types are not an error');
  t.equal(m.manifests[3]?.platform, undefined);
});

t.test('Docker v2 manifest and manifest list', async (t) => {
  const image = parseManifest(enc(dockerImage), MediaType.dockerManifest);
  t.equal(image.kind, 'image');
  t.equal(image.config?.mediaType, MediaType.dockerConfig);
  t.equal(image.layers[0]?.size, 20);
  const list = parseManifest(enc(dockerList), MediaType.dockerManifestList);
  t.equal(list.kind, 'index');
  t.same(list.manifests[0]?.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
});

t.test('schema1 signed and unsigned pass through without descriptors', async (t) => {
  for (const type of [MediaType.dockerSchema1, MediaType.dockerSchema1Signed]) {
    const m = parseManifest(enc({ ...schema1, signatures: [] }), type);
    t.same(m, { mediaType: type, kind: 'schema1', manifests: [], config: undefined, layers: [], subject: undefined });
  }
  const generic = parseManifest(enc(schema1), 'application/json');
  t.equal(generic.kind, 'schema1', 'shape decides under a generic content type');
  t.equal(generic.mediaType, 'application/json');
  t.throws(() => parseManifest(enc({ ...schema1, schemaVersion: 2 }), MediaType.dockerSchema1Signed), { code: 'MANIFEST_INVALID', message: /schemaVersion 1/ });
});

t.test('media type: field, header and their agreement', async (t) => {
  const noField = { schemaVersion: 2, config, layers: [layer] };
  t.equal(parseManifest(enc(noField), MediaType.ociManifest).mediaType, MediaType.ociManifest, 'old OCI manifests without the field use the header');
  t.equal(parseManifest(enc(noField), 'application/json').kind, 'image', 'shape decides');
  t.equal(parseManifest(enc({ schemaVersion: 2, manifests: [] }), 'application/json').kind, 'index');
  t.equal(parseManifest(enc(ociImage), 'application/json').mediaType, MediaType.ociManifest, 'generic header: the field wins');
  t.equal(parseManifest(enc(ociImage), '').mediaType, MediaType.ociManifest, 'no header: the field wins');
  t.equal(parseManifest(enc(ociImage), `${MediaType.ociManifest.toUpperCase()}; x=y`).kind, 'image', 'header compared without params/case');
  t.throws(() => parseManifest(enc(ociImage), MediaType.ociIndex), { code: 'MANIFEST_INVALID', status: 400, message: /differs from the content type/ });
  t.throws(() => parseManifest(enc(dockerImage), MediaType.ociManifest), { code: 'MANIFEST_INVALID', message: /differs/ });
  t.throws(() => parseManifest(enc(noField), ''), { code: 'MANIFEST_INVALID', message: /neither a mediaType field nor a content type/ });
  t.throws(() => parseManifest(enc({ ...ociImage, mediaType: '' }), MediaType.ociManifest), { code: 'MANIFEST_INVALID', message: /non-empty string/ });
  t.throws(() => parseManifest(enc({ ...ociImage, mediaType: 5 }), MediaType.ociManifest), { code: 'MANIFEST_INVALID', message: /non-empty string/ });
});

t.test('unknown manifest types read whatever descriptors they have', async (t) => {
  const artifact = { mediaType: 'application/vnd.example.thing+json', blobs: [], subject: { mediaType: MediaType.ociManifest, digest: d('a'), size: 9 } };
  const m = parseManifest(enc(artifact), 'application/vnd.example.thing+json');
  t.equal(m.kind, 'unknown');
  t.same(m.manifests, []);
  t.equal(m.config, undefined);
  t.same(m.layers, []);
  t.same(m.subject, { mediaType: MediaType.ociManifest, digest: d('a'), size: 9 });
  const withAll = parseManifest(enc({ manifests: [config], config, layers: [layer] }), 'application/vnd.example.other');
  t.same([withAll.manifests.length, withAll.config?.size, withAll.layers.length], [1, 123, 1]);
  t.equal(parseManifest(enc({ schemaVersion: 3 }), 'application/json').kind, 'unknown');
  t.throws(() => parseManifest(enc({ layers: [{ ...layer, size: -1 }] }), 'application/x-other'), { code: 'MANIFEST_INVALID' });
});

t.test('image and index with subject and descriptor extras', async (t) => {
  const subject = { mediaType: MediaType.ociManifest, digest: d('5'), size: 42 };
  const withUrls = { ...layer, mediaType: MediaType.dockerForeignLayerGzip, urls: ['https://example.com/layer'] };
  const m = parseManifest(enc({ ...ociImage, artifactType: 'application/vnd.example', subject, layers: [withUrls] }), MediaType.ociManifest);
  t.same(m.subject, subject);
  t.same(m.layers[0]?.urls, ['https://example.com/layer']);
  const idx = parseManifest(enc({ ...ociIndex, subject }), MediaType.ociIndex);
  t.same(idx.subject, subject);
});

const bad: [string, unknown, string, RegExp][] = [
  ['not JSON', '{"schemaVersion": 2,', MediaType.ociManifest, /not valid UTF-8 JSON/],
  ['empty body', '', MediaType.ociManifest, /not valid UTF-8 JSON/],
  ['JSON array', [], MediaType.ociManifest, /not a JSON object/],
  ['JSON null', 'null', MediaType.ociManifest, /not a JSON object/],
  ['JSON string', '"x"', MediaType.ociManifest, /not a JSON object/],
  ['image without schemaVersion', { ...ociImage, schemaVersion: undefined }, MediaType.ociManifest, /schemaVersion 2/],
  ['index with schemaVersion 1', { ...ociIndex, schemaVersion: 1 }, MediaType.ociIndex, /schemaVersion 2/],
  ['image without config', { ...ociImage, config: undefined }, MediaType.ociManifest, /config must be a descriptor/],
  ['image without layers', { ...ociImage, layers: undefined }, MediaType.ociManifest, /layers must be a list/],
  ['layers not a list', { ...ociImage, layers: {} }, MediaType.ociManifest, /layers must be a list/],
  ['index without manifests', { ...ociIndex, manifests: undefined }, MediaType.ociIndex, /manifests must be a list/],
  ['descriptor not an object', { ...ociImage, layers: [null] }, MediaType.ociManifest, /layers\[0\] must be a descriptor/],
  ['descriptor without mediaType', { ...ociImage, layers: [{ ...layer, mediaType: undefined }] }, MediaType.ociManifest, /layers\[0\]\.mediaType/],
  ['descriptor digest missing', { ...ociImage, config: { ...config, digest: undefined } }, MediaType.ociManifest, /config\.digest must be a string/],
  ['descriptor digest uppercase', { ...ociImage, config: { ...config, digest: d('C') } }, MediaType.ociManifest, /config\.digest: .*lowercase/],
  ['descriptor digest md5', { ...ociImage, layers: [layer, { ...layer, digest: 'md5:abc' }] }, MediaType.ociManifest, /layers\[1\]\.digest: .*not supported/],
  ['size negative', { ...ociImage, layers: [{ ...layer, size: -1 }] }, MediaType.ociManifest, /size must be a non-negative integer/],
  ['size float', { ...ociImage, layers: [{ ...layer, size: 1.5 }] }, MediaType.ociManifest, /size/],
  ['size string', { ...ociImage, layers: [{ ...layer, size: '10' }] }, MediaType.ociManifest, /size/],
  ['size missing', { ...ociImage, layers: [{ ...layer, size: undefined }] }, MediaType.ociManifest, /size/],
  ['size unsafe', '{"schemaVersion":2,"config":{"mediaType":"a","digest":"' + d('c') + '","size":9007199254740993},"layers":[]}', MediaType.ociManifest, /size/],
  ['platform not object', { ...ociIndex, manifests: [{ ...ociIndex.manifests[0], platform: 'linux/amd64' }] }, MediaType.ociIndex, /platform must be an object/],
  ['platform without architecture', { ...ociIndex, manifests: [{ ...ociIndex.manifests[0], platform: { os: 'linux' } }] }, MediaType.ociIndex, /os and architecture/],
  ['platform variant not string', { ...ociIndex, manifests: [{ ...ociIndex.manifests[0], platform: { os: 'linux', architecture: 'arm', variant: 7 } }] }, MediaType.ociIndex, /variant must be a string/],
  ['artifactType not string', { ...ociIndex, manifests: [{ ...ociIndex.manifests[0], artifactType: 1 }] }, MediaType.ociIndex, /artifactType must be a string/],
  ['urls not strings', { ...ociImage, layers: [{ ...layer, urls: [1] }] }, MediaType.ociManifest, /urls must be a list of strings/],
  ['urls not a list', { ...ociImage, layers: [{ ...layer, urls: 'https://x' }] }, MediaType.ociManifest, /urls must be a list of strings/],
  ['bad subject', { ...ociImage, subject: { ...config, size: -5 } }, MediaType.ociManifest, /size/],
];

t.test('invalid manifests throw MANIFEST_INVALID', async (t) => {
  for (const [label, body, type, message] of bad) {
    t.throws(() => parseManifest(enc(body), type), { name: 'OciError', code: 'MANIFEST_INVALID', status: 400, message }, label);
  }
});

t.test('bytes: invalid UTF-8, BOM, size cap', async (t) => {
  const good = enc(ociImage);
  const invalidUtf8 = new Uint8Array([...good.slice(0, -1), 0xff, 0x7d]);
  t.throws(() => parseManifest(invalidUtf8, MediaType.ociManifest), { code: 'MANIFEST_INVALID', message: /UTF-8/ });
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...good]);
  t.equal(parseManifest(bom, MediaType.ociManifest).kind, 'image', 'a UTF-8 BOM is tolerated');
  // Padded with whitespace: valid JSON, just too big.
  const big = new Uint8Array(MAX_MANIFEST_BYTES + 1).fill(0x20);
  big.set(good, 0);
  t.throws(() => parseManifest(big, MediaType.ociManifest), { code: 'MANIFEST_INVALID', message: /more than the 4194304 allowed/ });
  const atCap = new Uint8Array(MAX_MANIFEST_BYTES).fill(0x20);
  atCap.set(good, 0);
  t.equal(parseManifest(atCap, MediaType.ociManifest).kind, 'image');
});

t.test('the input bytes are not modified', async (t) => {
  const bytes = enc(`  ${JSON.stringify(ociIndex, null, 3)}\n`);
  const copy = bytes.slice();
  parseManifest(bytes, MediaType.ociIndex);
  t.same(bytes, copy);
});

t.test('childDescriptors: index children, then config and layers; never the subject', async (t) => {
  const digests = (value: unknown, type: string) => childDescriptors(parseManifest(enc(value), type)).map((c) => c.digest);
  t.same(digests(ociImage, MediaType.ociManifest), [d('c'), d('1'), d('2')], 'image manifest: config, then layers in order');
  t.same(digests(ociIndex, MediaType.ociIndex), [d('a'), d('b'), d('e'), d('f')], 'OCI index: every child, unknown types included');
  t.same(digests(dockerList, MediaType.dockerManifestList), [d('a')], 'Docker manifest list');
  t.same(digests(dockerImage, MediaType.dockerManifest), [d('c'), d('1')], 'Docker image manifest');
  const subject = { mediaType: MediaType.ociManifest, digest: d('5'), size: 42 };
  const empty = { mediaType: MediaType.ociEmpty, digest: d('4'), size: 2 };
  const artifact = { schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: 'application/vnd.example.sig', config: empty, layers: [], subject };
  t.same(digests(artifact, MediaType.ociManifest), [d('4')], 'artifact without layers: its config only, not the image it refers to');
  t.same(digests(schema1, MediaType.dockerSchema1), [], 'schema1 carries no descriptors');
});
