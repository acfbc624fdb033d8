import t from 'tap';
import { statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { readyzUntil, request } from '../fixtures/http.js';
import { isCached, MiB, pauseNextBlobGet, putRandomBlobs, tempFiles } from '../fixtures/cache.js';
import { storageLayout } from '../../src/storage/layout.js';
import { accessLines } from '../fixtures/access-log.js';
import { fillDisk } from '../fixtures/tmpfs.js';
import { until } from '../fixtures/poll.js';
import { got, logsMatching, warnings, NO_TMPFS, pullBlob, readyz, startOnSmallDisk, upstreamGets, whole, type SmallDisk } from '../fixtures/small-disk.js';

// A write that fails mid-download (ENOSPC here, on a real 64 MiB tmpfs) must not cut a single client:
// the download goes on from upstream without caching, nothing is fetched twice, the temp file goes.
const DISK = 64 * MiB;

function tempBytes(d: SmallDisk): number {
  const dir = storageLayout(d.storage).tmpDir;
  return tempFiles(d.storage).reduce((n, name) => n + statSync(path.join(dir, name)).size, 0);
}

async function coalesced(d: SmallDisk): Promise<number> {
  const { values } = await d.mirror.app.metrics.cacheLookups.get();
  return values.find((v) => v.labels['kind'] === 'blob' && v.labels['outcome'] === 'coalesced')?.value ?? 0;
}

t.test('the disk fills while three clients follow one download: all three get the whole blob; caching resumes when space returns', async (t) => {
  const d = await startOnSmallDisk(t, DISK);
  if (d === undefined) return void t.skip(NO_TMPFS, () => {});
  const [blob] = putRandomBlobs(d.reg, 'team/app', 1, 40 * MiB) as [string];
  const release = pauseNextBlobGet(d.reg, 8 * MiB);
  const pulls = [1, 2, 3].map(() => pullBlob(d, blob));
  await until('three clients on one download', () => coalesced(d), (n) => n >= 2);
  // The cache has begun writing (and checked the room) before the disk fills.
  await until('the temp file growing', () => tempBytes(d), (n) => n > 0);
  const filler = fillDisk(d.mount, MiB);
  release();
  const results = await Promise.all(pulls);
  for (const [i, res] of results.entries()) t.ok(whole(res, blob), `client ${i + 1}: whole (${got(res)})`);
  await d.mirror.app.settled();
  t.equal(upstreamGets(d, blob), 1, 'the bytes already received were not fetched again');
  t.notOk(isCached(d.storage, blob));
  t.same(tempFiles(d.storage), [], 'the temp file was removed');
  t.equal(warnings(d, /ran out of room/).length, 1, 'one warning for the download');
  const lines = accessLines(d.mirror.logs).filter((l) => l.reference === blob);
  t.same(lines.map((l) => [l.status, l.bytes, l.aborted]), [[200, 40 * MiB, undefined], [200, 40 * MiB, undefined], [200, 40 * MiB, undefined]], 'the access log says all three got it');
  t.match(await readyz(d), { status: 'degraded', reasons: [/^storage: no room on the disk/] });

  // The next pull streams from the first byte without trying the disk again.
  t.ok(whole(await pullBlob(d, blob), blob));
  t.equal(warnings(d, /ran out of room/).length, 1, 'the second pull did not run into the full disk again');

  unlinkSync(filler);
  d.advance(2 * 60_000);
  t.match(JSON.parse((await readyzUntil(d.mirror.url, { state: 'ok' })).body.toString()), { status: 'ok' }, 'ready and not degraded once space returned');
  t.ok(whole(await pullBlob(d, blob), blob));
  await d.mirror.app.settled();
  t.ok(isCached(d.storage, blob), 'caching resumed');
  t.same(logsMatching(d, /storage is (not writable|writable again)/), [], 'no "not writable / writable again" flapping');
});

t.test('a blob of unknown size larger than the disk: whole every time, the disk is tried once', async (t) => {
  const d = await startOnSmallDisk(t, DISK);
  if (d === undefined) return void t.skip(NO_TMPFS, () => {});
  const [blob] = putRandomBlobs(d.reg, 'team/app', 1, 80 * MiB) as [string];
  d.reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'chunked' });
  // A range request of a blob of unknown size waits for the cached file; there will be none, so it
  // is answered from a second download (whole: without a size no Content-Range can be written).
  const ranged = await request(`${d.mirror.url}/v2/team/app/blobs/${blob}`, { headers: { range: 'bytes=0-99' } });
  t.ok(whole(ranged, blob), `a range request: answered, not failed (${got(ranged)})`);
  const res = await pullBlob(d, blob);
  t.ok(whole(res, blob), `the next pull is whole (${got(res)})`);
  await d.mirror.app.settled();
  t.equal(warnings(d, /ran out of room/).length, 1, 'the later pulls streamed without caching from their first byte');
  t.same(tempFiles(d.storage), []);
  t.notOk(isCached(d.storage, blob));
  t.equal(upstreamGets(d, blob), 3, 'the cut first download, the range answer, the pull');
  t.same(logsMatching(d, /storage is (not writable|writable again)/), [], 'a full disk is not "not writable"');
  // Past the retry pause the whole size is known, so statfs alone keeps it streaming: no third try.
  d.advance(2 * 60_000);
  t.ok(whole(await pullBlob(d, blob), blob));
  t.equal(warnings(d, /ran out of room/).length, 1, 'known too big for the disk: not tried again');
});
