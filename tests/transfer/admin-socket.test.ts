import t from 'tap';
import path from 'node:path';
import { request } from '../fixtures/http.js';
import { buildImage, randomLayer, sha256 } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { REFS, startTransferWorld, UP } from '../fixtures/transfer.js';
import { routeContext } from '../../src/app.js';
import { openAdmin } from '../../src/admin/index.js';
import {
  openLayoutFiles,
  openLayoutWriter,
  parseImageRef,
  readImportPlan,
  remoteExportSource,
  remoteImportTarget,
  runExport,
  runImport,
  TransferError,
  type AdminTransport,
} from '../../src/transfer/index.js';

const transport = (storage: string): AdminTransport => (method, p, body, headers) => openAdmin(storage, method, p, body, headers);

t.test('beside a running serve: export and import go through its admin socket', async (t) => {
  const world = await startTransferWorld(t);
  const out = path.join(world.dir, 'via-socket.tar');
  const context = routeContext(world.connected.app.config);
  const source = remoteExportSource(transport(world.connected.storage));
  const result = await runExport({ items: REFS.map((r) => ({ ref: parseImageRef(r, context), platforms: ['linux/amd64'] })), platforms: ['linux/amd64'], since: undefined, version: 'test' }, source, await openLayoutWriter(out));
  t.same(result.errors, []);
  t.ok(world.reg.count({ kind: 'blob', method: 'GET' }) > 0, 'the serve pulled through its cache');
  t.same(await source.tags({ upstream: UP, name: parseImageRef(REFS[2]!, context).repository }), ['1']);

  const missingRef = parseImageRef(`${UP}/team/none:1`, context);
  const failed = await runExport({ items: [{ ref: missingRef, platforms: [] }], platforms: [], since: undefined, version: 'test' }, source, await openLayoutWriter(path.join(world.dir, 'failed')));
  t.match(failed.errors, [/registry\.test\/team\/none:1: /], 'an image the upstream lacks fails, reported');

  const { mirror, empty } = await world.disconnected({ maxSize: '8MiB', online: true }); // online: filler pulled through it evicts
  const files = await openLayoutFiles(out);
  const target = remoteImportTarget(transport(mirror.storage));
  const imported = await runImport(files, await readImportPlan(files, routeContext(mirror.app.config)), target, { pin: true });
  t.equal(imported.images.length, 4);
  t.same(imported.pinned, [`${UP}/team/a`, `${UP}/team/b`, `${UP}/team/multi`, `${UP}/team/single`]);
  const m = await request(`${mirror.url}/v2/team/multi/manifests/${world.images.amd64.manifestDigest}`, { headers: { accept: world.images.amd64.mediaType } });
  t.equal(sha256(m.body), world.images.amd64.manifestDigest, 'the selected platform pulls');
  t.equal(empty.count(), 0);
  const pinned = new Set<string>(mirror.app.cache.pinnedDigests());
  t.ok(pinned.has(world.images.a.layers[0]!.digest) && pinned.has(world.images.multi.manifestDigest), 'pinned in the running server at once');

  // Filling the 8 MiB budget with something else evicts nothing imported.
  const big = buildImage({ layers: [randomLayer(3 * 1024 * 1024, 'filler-1'), randomLayer(3 * 1024 * 1024, 'filler-2')] });
  empty.pushImage('team/filler', '1', big);
  for (const l of big.layers) t.equal((await request(`${mirror.url}/v2/team/filler/blobs/${l.digest}`)).status, 200);
  await mirror.app.settled();
  const layer = world.images.b.layers[1]!;
  t.equal(sha256((await request(`${mirror.url}/v2/team/b/blobs/${layer.digest}`)).body), layer.digest, 'imported content survived the eviction');

  const absent = `sha256:${'0'.repeat(64)}` as never;
  await t.rejects(target.putBlob(absent, 31, (await openLayoutFiles(out)).open('oci-layout')), /hash|match/, 'bytes that do not match are refused');
  t.same(await target.missing([absent]), [absent], 'and nothing was kept');
  await t.rejects(target.commit({ upstream: UP, repository: 'team/none', tag: '1', digest: absent, mediaType: 'application/vnd.oci.image.manifest.v1+json', filtered: [], pin: false }), TransferError, 'a commit of content the cache lacks fails');
  await t.rejects(target.commit({ upstream: 'nowhere.test', repository: 'team/none', tag: '1', digest: world.images.single.config.digest as never, mediaType: 'x', filtered: [], pin: false }), /not a configured upstream/);
  const res = await openAdmin(mirror.storage, 'POST', '/v1/transfer/missing', Buffer.from('not json'));
  t.equal(res.status, 400, 'a malformed request is answered 400');
  const unknown = await openAdmin(mirror.storage, 'POST', '/v1/transfer/nothing', Buffer.from('{}'));
  t.equal(unknown.status, 404);
  const older = remoteImportTarget((method, _p, body, headers) => openAdmin(mirror.storage, method, '/v1/unknown', body, headers));
  await t.rejects(older.missing([absent]), /no export\/import over its admin socket/, 'a server without the routes is named as such');

  // Restarted on the same storage: the pins come back from the storage's pin file.
  await mirror.close();
  const again = await startMirror(t, { upstreams: { [UP]: { url: empty.url } }, storage: mirror.storage, maxSize: '8MiB' });
  t.ok(new Set<string>(again.app.cache.pinnedDigests()).has(world.images.a.layers[0]!.digest), 'pinned after a restart');
});
