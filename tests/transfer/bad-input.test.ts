import t, { type Test } from 'tap';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REFS, startTransferWorld, UP } from '../fixtures/transfer.js';
import type { TestMirror } from '../fixtures/mirror.js';
import { LayoutError } from '../../src/transfer/index.js';

function blobFiles(storage: string): string[] {
  const root = path.join(storage, 'v1', 'blobs', 'sha256');
  try {
    return readdirSync(root).flatMap((shard) => readdirSync(path.join(root, shard)));
  } catch {
    return [];
  }
}

async function unchanged(t: Test, mirror: TestMirror): Promise<void> {
  t.same(blobFiles(mirror.storage), [], 'no blob entered the cache');
  const tags: unknown[] = [];
  for await (const tag of (mirror.app as unknown as { metadata: { tags(): AsyncIterable<unknown> } }).metadata.tags()) tags.push(tag);
  t.same(tags, [], 'no tag was recorded');
}

type Index = { manifests: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }> };

t.test('bad input is refused whole: one clear error, nothing changed', async (t) => {
  const world = await startTransferWorld(t);
  const good = path.join(world.dir, 'good');
  t.same((await world.exportTo(good, REFS, { platforms: ['linux/arm64'] })).errors, []);
  const tarFile = path.join(world.dir, 'good.tar');
  t.same((await world.exportTo(tarFile, REFS)).errors, []);
  const { mirror, empty } = await world.disconnected();
  let n = 0;
  const variant = (change: (dir: string) => void): string => {
    const dir = path.join(world.dir, `bad-${++n}`);
    cpSync(good, dir, { recursive: true });
    change(dir);
    return dir;
  };
  const editIndex = (dir: string, edit: (index: Index) => void) => {
    const file = path.join(dir, 'index.json');
    const index = JSON.parse(readFileSync(file, 'utf8')) as Index;
    edit(index);
    writeFileSync(file, JSON.stringify(index));
  };
  const layer = world.images.a.layers[1]!.digest.slice(7);
  const cases: Array<[string, string, RegExp]> = [
    ['a missing oci-layout', variant((d) => rmSync(path.join(d, 'oci-layout'))), /is not an OCI image layout: oci-layout is missing/],
    ['no index.json', variant((d) => rmSync(path.join(d, 'index.json'))), /has no index\.json/],
    [
      'a blob whose bytes do not match its name',
      variant((d) => {
        const file = path.join(d, 'blobs', 'sha256', layer);
        const bytes = readFileSync(file);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
        writeFileSync(file, bytes);
      }),
      new RegExp(`does not match its name sha256:${layer}`),
    ],
    ['a blob of the wrong size', variant((d) => writeFileSync(path.join(d, 'blobs', 'sha256', layer), 'short')), /is 5 bytes, but manifest sha256:\w+ says \d+/],
    ['a manifest referring to a missing blob', variant((d) => rmSync(path.join(d, 'blobs', 'sha256', layer))), new RegExp(`refers to sha256:${layer}, which is neither in the layout nor in the cache`)],
    [
      'a missing child manifest the filter did not leave out',
      variant((d) => rmSync(path.join(d, 'blobs', 'sha256', world.images.arm64.manifestDigest.slice(7)))),
      /refers to manifest sha256:\w+, which is not in the layout/,
    ],
    ['an unknown media type', variant((d) => editIndex(d, (i) => void (i.manifests[0]!.mediaType = 'application/vnd.example.thing'))), /unknown media type "application\/vnd\.example\.thing"/],
    [
      'a ref name that is not a valid reference',
      variant((d) => editIndex(d, (i) => void (i.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': `${UP}/Team/App:1` }))),
      /"registry\.test\/Team\/App:1" is not a valid image reference: .*lowercase/,
    ],
    ['a tag without a repository', variant((d) => editIndex(d, (i) => void (i.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': '1.0' }))), /names no tag or digest/],
    ['an unconfigured registry', variant((d) => editIndex(d, (i) => void (i.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': 'other.example/team/app:1' }))), /other\.example is not a configured upstream/],
    ['index.json that is not JSON', variant((d) => writeFileSync(path.join(d, 'index.json'), '{')), /index\.json is not JSON/],
    ['a path that does not exist', path.join(world.dir, 'nowhere'), /no such file or directory/],
  ];
  const truncated = path.join(world.dir, 'truncated.tar');
  cpSync(tarFile, truncated);
  truncateSync(truncated, Math.floor(statSync(tarFile).size / 2));
  cases.push(['a truncated tar', truncated, /is a truncated tar/]);
  const garbage = path.join(world.dir, 'garbage.tar');
  writeFileSync(garbage, Buffer.alloc(4096, 7));
  cases.push(['a file that is no tar', garbage, /not a tar archive/]);

  for (const [what, dir, message] of cases) {
    const err = await world.importInto(mirror, dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof LayoutError, `${what}: refused as bad input`);
    t.match((err as Error | undefined)?.message, message, what);
  }
  await unchanged(t, mirror);
  t.equal(empty.count(), 0, 'nothing reached the upstream');

  const ok = await world.importInto(mirror, tarFile);
  t.equal(ok.images.length, 4, 'the good tar imports after all that');
});
