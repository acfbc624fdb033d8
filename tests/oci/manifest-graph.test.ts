import t from 'tap';
import {
  ManifestGraphTooDeepError,
  MediaType,
  walkManifestGraph,
  type Descriptor,
  type Digest,
  type ManifestGraph,
  type ParsedManifest,
} from '../../src/oci/index.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const desc = (c: string, mediaType: string): Descriptor => ({ mediaType, digest: d(c), size: 1 });
const image = (config: string, ...layers: string[]): ParsedManifest => ({
  mediaType: MediaType.ociManifest,
  kind: 'image',
  manifests: [],
  config: desc(config, MediaType.ociConfig),
  layers: layers.map((l) => desc(l, MediaType.ociLayerGzip)),
  subject: undefined,
});
const index = (...children: string[]): ParsedManifest => ({
  mediaType: MediaType.ociIndex,
  kind: 'index',
  manifests: children.map((c) => desc(c, MediaType.ociManifest)),
  config: undefined,
  layers: [],
  subject: undefined,
});

/** A graph over a fixed table of manifests, counting loads. */
function table(manifests: Record<string, ParsedManifest>): ManifestGraph & { loads: Digest[] } {
  const loads: Digest[] = [];
  return {
    loads,
    load: async (digest) => (loads.push(digest), manifests[digest]),
    descend: (child) => child.mediaType === MediaType.ociManifest || child.mediaType === MediaType.ociIndex,
  };
}

t.test('reaches the root, its manifests and their configs and layers; loads only manifests', async (t) => {
  const graph = table({ [d('0')]: index('a', 'b'), [d('a')]: image('c', '1', '2'), [d('b')]: image('c', '3') });
  const reached = await walkManifestGraph({ digest: d('0'), mediaType: MediaType.ociIndex }, graph);
  t.same([...reached].sort(), ['0', '1', '2', '3', 'a', 'b', 'c'].map(d).sort());
  t.same(graph.loads, [d('0'), d('a'), d('b')], 'pre-order, each manifest once, no layer read');
});

t.test('a manifest not at hand reaches only itself; a shared reached set skips what is known', async (t) => {
  const graph = table({ [d('0')]: index('a', 'b'), [d('b')]: image('c', '3') });
  const reached = await walkManifestGraph({ digest: d('0'), mediaType: MediaType.ociIndex }, graph);
  t.same([...reached].sort(), ['0', '3', 'a', 'b', 'c'].map(d).sort());
  const again = await walkManifestGraph({ digest: d('b'), mediaType: MediaType.ociManifest }, graph, { reached });
  t.equal(again, reached);
  t.equal(graph.loads.length, 3, 'a root already reached is not loaded again');
});

t.test('a given root is not loaded; onManifest sees every manifest read', async (t) => {
  const graph = table({ [d('a')]: image('c', '1') });
  const seen: string[] = [];
  await walkManifestGraph({ digest: d('0'), mediaType: MediaType.ociIndex, parsed: index('a') }, graph, { onManifest: (digest, m) => seen.push(`${m.kind} ${digest}`) });
  t.same(graph.loads, [d('a')]);
  t.same(seen, [`index ${d('0')}`, `image ${d('a')}`]);
});

t.test('descending past maxDepth throws; up to it is fine', async (t) => {
  const graph = table({ [d('0')]: index('1'), [d('1')]: index('2'), [d('2')]: image('c') });
  const root = { digest: d('0'), mediaType: MediaType.ociIndex };
  t.ok((await walkManifestGraph(root, graph, { maxDepth: 2 })).has(d('c')));
  await t.rejects(walkManifestGraph(root, graph, { maxDepth: 1 }), ManifestGraphTooDeepError);
});
