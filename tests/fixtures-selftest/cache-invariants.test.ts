import t from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkCacheInvariants, paths } from '../fixtures/cache-invariants.js';
import { blobPath } from '../fixtures/cache.js';
import { request } from '../fixtures/http.js';
import { quickImage } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const MAX = 1024 * 1024;

t.test('the cache invariant checker passes a sound directory and names each violation', async (t) => {
  // A directory written by the current build, so the checker is held to the layout it reads.
  const reg = await startTestRegistry(t);
  const image = quickImage('invariants');
  reg.pushImage('team/pinned', 'v1', image);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, maxSize: MAX, pin: ['docker.io/team/pinned'] });
  t.equal((await request(`${mirror.url}/v2/team/pinned/manifests/v1`, { headers: { accept: image.mediaType } })).status, 200);
  const blobs = [image.config.digest, ...image.layers.map((l) => l.digest)];
  for (const d of blobs) t.equal((await request(`${mirror.url}/v2/team/pinned/blobs/${d}`)).status, 200);
  await mirror.app.settled();
  await mirror.close();
  const pinnedDigests = [image.manifestDigest, ...blobs];
  const total = image.manifest.length + image.config.size + image.layers.reduce((n, l) => n + l.size, 0);

  const copy = (): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'regmirror-invariants-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    cpSync(mirror.storage, dir, { recursive: true });
    return dir;
  };
  t.same(await checkCacheInvariants(copy(), { maxSize: MAX, pinnedDigests }), [], 'a sound directory');
  t.same(await checkCacheInvariants(copy(), { maxSize: total }), [], 'exactly at the budget');

  const layer = image.layers[0]!.digest;
  const corrupt = copy();
  const bytes = readFileSync(blobPath(corrupt, layer));
  bytes[0] = bytes[0]! ^ 0xff;
  writeFileSync(blobPath(corrupt, layer), bytes);
  const hashed = await checkCacheInvariants(corrupt, { maxSize: MAX });
  t.equal(hashed.length, 1);
  t.match(hashed[0], new RegExp(`^blob ${layer} hashes to sha256:[0-9a-f]{64}$`), 'a blob that does not hash to its name');

  const stray = copy();
  writeFileSync(path.join(paths(stray).tmp, `${'ab'.repeat(32)}.0123456789ab`), 'partial');
  t.same(await checkCacheInvariants(stray, { maxSize: MAX }), [`stray temp file: tmp/${'ab'.repeat(32)}.0123456789ab`]);

  const misplaced = copy();
  writeFileSync(path.join(paths(misplaced).blobs, 'sha256', layer.slice(7, 9), 'notes.txt'), 'x');
  t.same(await checkCacheInvariants(misplaced, { maxSize: MAX }), [`stray file under blobs/: sha256/${layer.slice(7, 9)}/notes.txt`]);

  t.same(await checkCacheInvariants(copy(), { maxSize: total - 1 }), [`blob files hold ${total} bytes, over the budget of ${total - 1}`]);

  const unpinned = copy();
  unlinkSync(blobPath(unpinned, layer));
  t.same(
    await checkCacheInvariants(unpinned, { maxSize: MAX, pinnedDigests }),
    [`pinned blob ${layer} is missing`, `cache-index.json lists ${layer}, which has no blob file`],
    'a pinned blob gone, and the snapshot still listing it',
  );

  const resized = copy();
  const snapshot = JSON.parse(readFileSync(paths(resized).cacheIndex, 'utf8')) as { blobs: Array<[string, number, ...unknown[]]> };
  const row = snapshot.blobs.find(([d]) => d === layer)!;
  row[1] += 1;
  writeFileSync(paths(resized).cacheIndex, JSON.stringify(snapshot));
  t.same(await checkCacheInvariants(resized, { maxSize: MAX }), [`cache-index.json lists ${layer} with ${row[1]} bytes, its file has ${row[1] - 1}`]);
});
