import t from 'tap';
import { FakeTimers } from '../fixtures/fake-timers.js';
import { randomLayer, buildImage, quickImage } from '../fixtures/images.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';
import { until } from '../fixtures/poll.js';

t.test('a scheduled entry fires on its interval and never overlaps itself', async (t) => {
  const timers = new FakeTimers();
  const img = buildImage({ layers: [randomLayer(100_000, 'sched')] });
  const { reg, mirror } = await startSyncWorld(t, {
    syncTimers: timers,
    sync: { jitter: '0', entries: [{ name: 'every-minute', upstream: UP, repository: 'team/app', tags: ['1'], schedule: '1m' }] },
  });
  reg.pushImage('team/app', '1', img);
  const jobs = mirror.app.metrics.tracker.syncJobs;
  t.equal(timers.armed, 1, 'armed at start');
  t.equal(reg.requests.length, 0, 'nothing runs before the first slot');

  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET', pathIncludes: img.layers[0]?.digest ?? 'x' }, type: 'pause-after', bytes: 10_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  timers.advance(60_000);
  await until('the first run to start', () => jobs.get('every-minute')?.running === true);
  await until('the blob to be paused', () => reg.filter({ kind: 'blob' }).some((r) => r.bytesSent > 0));
  t.equal(timers.armed, 0, 'no timer while the run is going');
  timers.advance(10 * 60_000);
  t.equal(reg.count({ kind: 'manifest', method: 'GET' }), 1, 'ten more minutes: still one run');

  release();
  await until('the first run to finish', () => jobs.get('every-minute')?.running === false);
  t.equal(jobs.get('every-minute')?.lastResult, 'success');
  t.equal(timers.armed, 1, 'the next slot is armed when the run ends');

  // A second run: the tag is fresh in the cache, so it needs no upstream request, but it is a run.
  timers.advance(60_000);
  await until('the second run to finish', () => secondRun(mirror.logs) >= 2);
  t.equal(timers.armed, 1, 'and the third is armed');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 2, 'config and layer downloaded once each, over two runs');
});

t.test('runOnStart runs right away; an entry without schedule waits for the CLI', async (t) => {
  const timers = new FakeTimers();
  const { reg, mirror } = await startSyncWorld(t, {
    syncTimers: timers,
    sync: {
      jitter: '30s',
      entries: [
        { name: 'boot', upstream: UP, repository: 'team/boot', tags: ['1'], runOnStart: true, schedule: '0 3 * * *' },
        { name: 'manual', upstream: UP, repository: 'team/manual', tags: ['1'] },
      ],
    },
  });
  reg.pushImage('team/boot', '1', quickImage('boot'));
  reg.pushImage('team/manual', '1', quickImage('manual'));
  t.equal(timers.armed, 1, 'only the runOnStart entry is armed');
  timers.advance(0);
  await until('the boot run', () => mirror.app.metrics.tracker.syncJobs.get('boot')?.lastResult === 'success');
  t.equal(timers.armed, 1, 'then its cron slot is armed');
  t.equal(reg.count({ repo: 'team/manual' }), 0);
  timers.advance(3 * 3_600_000 + 30_000);
  t.equal(mirror.app.metrics.tracker.syncJobs.get('manual'), undefined, 'never scheduled');
});

function secondRun(logs: readonly string[]): number {
  return logs.filter((l) => l.includes('"job":"every-minute"') && l.includes('sync run finished')).length;
}
