import t from 'tap';
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { readyzUntil, request } from '../fixtures/http.js';
import { isCached, MiB, putRandomBlobs } from '../fixtures/cache.js';
import { storageLayout } from '../../src/storage/layout.js';
import { closeAndCheckInvariants } from '../fixtures/cache-invariants.js';
import { fillDisk, smallTmpfs } from '../fixtures/tmpfs.js';
import { whole } from '../fixtures/small-disk.js';

async function readyz(mirror: TestMirror, state: string): Promise<{ status: string; reasons?: string[] }> {
  return JSON.parse((await readyzUntil(mirror.url, { state })).body.toString()) as { status: string; reasons?: string[] };
}

t.test('disk full (a real tmpfs): pulls stream from upstream, readiness and status say degraded, caching resumes', async (t) => {
  const mount = smallTmpfs(t, 8 * MiB);
  if (mount === undefined) {
    // A skip, not a pass: a run without the mount must not look as if a full disk was tested.
    t.skip('mount -t tmpfs is not permitted here; the injected-error test below covers the same paths', () => {});
    return;
  }
  const reg = await startTestRegistry(t);
  const [blob] = putRandomBlobs(reg, 'team/app', 1, 2 * MiB) as [string];
  const image = quickImage('disk-full');
  reg.pushImage('team/app', 'v1', image);
  const storage = path.join(mount, 'data');
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, storage });
  // Leave less room than the 64 KiB readiness probe needs.
  const filler = fillDisk(mount, 16 * 1024);

  // Every pull streams straight from upstream, the first one too (it used to get an empty reply).
  for (let i = 0; i < 4; i++) t.ok(whole(await request(`${mirror.url}/v2/team/app/blobs/${blob}`), blob), `pull ${i + 1} while full is whole`);
  const manifest = await request(`${mirror.url}/v2/team/app/manifests/v1`, { headers: { accept: image.mediaType } });
  t.equal(manifest.status, 200, 'manifests are served too');
  await mirror.app.settled();
  t.notOk(isCached(storage, blob), 'nothing was cached');
  t.equal(mirror.logs.filter((l) => l.includes('"level":"warn"') && l.includes('no room on the disk')).length, 1, 'one warning, not one per pull');

  // The readiness probe's write meets the full disk itself.
  const degraded = await readyz(mirror, 'degraded');
  t.same(degraded, { status: 'degraded', reasons: ['storage: not writable (ENOSPC): serving without caching'] });
  const warnings = mirror.logs.filter((l) => l.includes('storage is not writable'));
  t.equal(warnings.length, 1);
  t.match(warnings[0], /"reason":"ENOSPC"/);
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { storage: { state: string; reason: string | null } };
  t.match(status.storage, { state: 'degraded', reason: 'ENOSPC' });
  t.equal((await mirror.app.metrics.storageDegraded.get()).values[0]?.value, 1, 'the gauge says so too');

  unlinkSync(filler);
  t.same(await readyz(mirror, 'ok'), { status: 'ok' }, 'ready and healthy once space returned');
  t.ok(whole(await request(`${mirror.url}/v2/team/app/blobs/${blob}`), blob));
  await mirror.app.settled();
  t.ok(isCached(storage, blob), 'caching resumed by itself');
  t.ok(mirror.logs.some((l) => l.includes('caching resumed')));
  const after = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { storage: { state: string } };
  t.equal(after.storage.state, 'ok');
  t.equal((await mirror.app.metrics.storageDegraded.get()).values[0]?.value, 0);
  // startMirror's default budget.
  await closeAndCheckInvariants(t, mirror, { maxSize: 1024 * MiB });
});

t.test('unwritable storage (an injected error at the file-system boundary): pulls still stream, nothing is cached', async (t) => {
  const reg = await startTestRegistry(t);
  const [blob] = putRandomBlobs(reg, 'team/app', 1, MiB) as [string];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  // Root ignores permissions: break the temp dir itself, so every new temp file fails (ENOTDIR).
  const tmp = storageLayout(mirror.storage).tmpDir;
  rmSync(tmp, { recursive: true });
  writeFileSync(tmp, 'not a directory');
  for (let i = 0; i < 2; i++) t.ok(whole(await request(`${mirror.url}/v2/team/app/blobs/${blob}`), blob), `pull ${i + 1} is whole`);
  await mirror.app.settled();
  t.notOk(isCached(mirror.storage, blob));
  t.equal(mirror.logs.filter((l) => l.includes('storage is not writable')).length, 1);
  t.match(await readyz(mirror, 'degraded'), { status: 'degraded' });
  rmSync(tmp);
  mkdirSync(tmp);
  t.same(await readyz(mirror, 'ok'), { status: 'ok' });
  t.ok(whole(await request(`${mirror.url}/v2/team/app/blobs/${blob}`), blob));
  await mirror.app.settled();
  t.ok(isCached(mirror.storage, blob), 'cached again');
  await closeAndCheckInvariants(t, mirror, { maxSize: 1024 * MiB });
});
