import t from 'tap';
import { request } from '../fixtures/http.js';
import { cacheNumbers, isCached, MiB, putRandomBlobs, tempFiles } from '../fixtures/cache.js';
import { blobSizes } from '../fixtures/cache-invariants.js';
import { accessLines } from '../fixtures/access-log.js';
import { got, logsMatching, warnings, NO_TMPFS, pullBlob, readyz, startOnSmallDisk, upstreamGets, whole } from '../fixtures/small-disk.js';

// storage.maxSize may promise more than the file system holds (a node disk shared with other data).
// A pull must never fail because the cache could not keep the blob: these run on a real 64 MiB tmpfs
// (storage.minFree at its default, 5%).
const DISK = 64 * MiB;

t.test('a blob larger than the disk, pulled five times with /readyz between: 5/5 whole, degraded while the disk is the limit', async (t) => {
  const d = await startOnSmallDisk(t, DISK, { maxSize: '50GiB' });
  if (d === undefined) return void t.skip(NO_TMPFS, () => {});
  const [small] = putRandomBlobs(d.reg, 'team/app', 1, 12 * MiB) as [string];
  const [big] = putRandomBlobs(d.reg, 'team/app', 1, 80 * MiB) as [string];
  t.ok(whole(await pullBlob(d, small), small));
  await d.mirror.app.settled();
  t.ok(isCached(d.storage, small), '12 MiB cached before');

  for (let i = 1; i <= 5; i++) {
    const res = await pullBlob(d, big);
    t.ok(whole(res, big), `pull ${i}: 200, complete, right digest (${got(res)})`);
    const ready = await readyz(d);
    t.equal(ready.status, 'degraded', `readyz after pull ${i} says degraded`);
    t.match(ready.reasons?.join('\n'), /^storage: no room on the disk for 1 blob\(s\), the largest 80\.0 MiB/, 'and why');
  }
  await d.mirror.app.settled();
  t.equal(upstreamGets(d, big), 5, 'one upstream GET per pull, nothing fetched twice');
  t.notOk(isCached(d.storage, big));
  t.ok(isCached(d.storage, small), 'nothing was evicted for a blob that could never fit');
  t.same(tempFiles(d.storage), [], 'no temp file left');
  const lines = accessLines(d.mirror.logs).filter((l) => l.reference === big);
  t.equal(lines.length, 5);
  for (const line of lines) t.ok(line.status === 200 && line.bytes === 80 * MiB && line.aborted === undefined, `logged as sent: ${JSON.stringify(line)}`);
  t.same(logsMatching(d, /storage is (not writable|writable again)/), [], 'no "not writable / writable again" storm');
  t.equal(warnings(d, /no room on the disk/).length, 1, 'one warning for the five pulls');
  const status = JSON.parse((await request(`${d.mirror.url}/api/status`)).body.toString()) as { storage: { state: string; reason: string } };
  t.match(status.storage, { state: 'degraded', reason: /no room on the disk/ }, '/api/status says so too');
});

t.test('a budget larger than the disk: the cache evicts to fit the disk and every pull is whole', async (t) => {
  const d = await startOnSmallDisk(t, DISK, { maxSize: '1GiB' });
  if (d === undefined) return void t.skip(NO_TMPFS, () => {});
  const digests = putRandomBlobs(d.reg, 'team/app', 7, 12 * MiB);
  for (const [i, digest] of digests.entries()) {
    const res = await pullBlob(d, digest);
    t.ok(whole(res, digest), `pull ${i + 1} of 7 is whole (${got(res)})`);
    await d.mirror.app.settled();
  }
  const cached = [...blobSizes(d.storage).values()].reduce((a, b) => a + b, 0);
  t.ok(cached <= DISK, `the cache holds ${cached} bytes, within the disk`);
  t.ok(isCached(d.storage, digests.at(-1)!), 'the newest blob is cached');
  t.ok((await cacheNumbers(d.mirror.app)).evictions > 0, 'older blobs were evicted to make room on the disk');
  t.same(tempFiles(d.storage), []);
  t.equal((await readyz(d)).status, 'ok', 'evicting is the budget at work, not a degraded state');
  for (const digest of digests) t.equal(upstreamGets(d, digest), 1);
});
