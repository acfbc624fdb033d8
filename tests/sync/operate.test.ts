import t from 'tap';
import { callAdmin, openAdmin } from '../../src/admin/index.js';
import { CliError } from '../../src/cli/cli-error.js';
import { runInServer } from '../../src/cli/sync.js';
import type { SyncProgress } from '../../src/sync/index.js';
import { FakeTimers } from '../fixtures/fake-timers.js';
import { errorCode, request } from '../fixtures/http.js';
import { buildImage, quickImage, randomLayer } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { until } from '../fixtures/poll.js';
import { basic, standInCredentials } from '../fixtures/stand-in-credentials.js';
import { startSyncWorld, UP } from '../fixtures/sync.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// Sync as an operator drives it on a running server: listed before it ever ran, started from the
// API or the CLI (through the admin socket), and the status says who started the last run.

interface SyncRow {
  job: string;
  schedule: string | null;
  nextRunAt: string | null;
  running: boolean;
  lastOrigin: string | null;
  lastResult: string | null;
}

async function syncRows(url: string, authorization?: string): Promise<SyncRow[]> {
  const res = await request(`${url}/api/status`, { headers: authorization === undefined ? {} : { authorization } });
  return (JSON.parse(res.body.toString()) as { sync: SyncRow[] }).sync;
}

function post(url: string, authorization?: string) {
  return request(url, { method: 'POST', headers: authorization === undefined ? {} : { authorization } });
}

t.test('/api/status lists every entry before it ever ran, with schedule and next run; each run says who started it', async (t) => {
  const timers = new FakeTimers();
  const { reg, mirror } = await startSyncWorld(t, {
    syncTimers: timers,
    sync: {
      jitter: '0',
      entries: [
        { name: 'every-6h', upstream: UP, repository: 'team/app', tags: ['1'], schedule: '6h' },
        { name: 'nightly', upstream: UP, repository: 'team/app', tags: ['1'], schedule: '0 3 * * *' },
        { name: 'manual', upstream: UP, repository: 'team/app', tags: ['1'] },
      ],
    },
  });
  reg.pushImage('team/app', '1', quickImage('operate-status'));
  const start = timers.now();
  const before = await syncRows(mirror.url);
  t.same(
    before.map((r) => [r.job, r.schedule, r.running, r.lastOrigin, r.lastResult]),
    [
      ['every-6h', '6h', false, null, null],
      ['nightly', '0 3 * * *', false, null, null],
      ['manual', null, false, null, null],
    ],
  );
  t.equal(before[0]?.nextRunAt, new Date(start + 6 * 3_600_000).toISOString());
  t.match(before[1]?.nextRunAt, /T03:00:00\.000Z$/);
  t.equal(before[2]?.nextRunAt, null, 'no schedule: nothing planned');

  t.ok((await mirror.app.sync.run({ only: 'manual' })).ok);
  t.match((await syncRows(mirror.url))[2], { lastOrigin: 'cli', lastResult: 'success' });

  const started = await post(`${mirror.url}/api/sync/nightly`);
  t.equal(started.status, 202);
  t.match(JSON.parse(started.body.toString()), { entry: 'nightly', startedAt: /^\d{4}-\d\d-\d\dT/ });
  await until('the API run to finish', async () => (await syncRows(mirror.url))[1]?.lastResult === 'success');
  t.match((await syncRows(mirror.url))[1], { lastOrigin: 'api', running: false });

  timers.advance(6 * 3_600_000);
  await until('the scheduled run to finish', async () => (await syncRows(mirror.url))[0]?.lastOrigin === 'scheduled');
  t.equal((await syncRows(mirror.url))[0]?.nextRunAt, new Date(start + 12 * 3_600_000).toISOString(), 'the next slot is planned');
});

t.test('POST /api/sync/<entry>: 202, 409 while it runs, 404 for an unknown entry, 405 for GET', async (t) => {
  const layer = randomLayer(100_000, 'operate-409');
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ upstream: UP, repository: 'team/app', tags: ['1'] }] });
  reg.pushImage('team/app', '1', buildImage({ layers: [layer] }));
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', pathIncludes: layer.digest }, type: 'pause-after', bytes: 10_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  // The default name holds slashes: `<upstream>/<repository>`, in the path as it is or encoded.
  const first = await post(`${mirror.url}/api/sync/${UP}/team/app`);
  t.equal(first.status, 202);
  await until('the blob to be under way', () => reg.filter({ kind: 'blob', pathIncludes: layer.digest }).some((r) => r.bytesSent > 0));
  const again = await post(`${mirror.url}/api/sync/${encodeURIComponent(`${UP}/team/app`)}`);
  t.equal(again.status, 409);
  t.match(JSON.parse(again.body.toString()), { errors: [{ message: /is already running \(since \d{4}-/ }] });
  release();
  await until('the run to finish', async () => (await syncRows(mirror.url))[0]?.lastResult === 'success');

  const unknown = await post(`${mirror.url}/api/sync/nope`);
  t.equal(unknown.status, 404);
  t.equal(errorCode(unknown), 'NAME_UNKNOWN');
  t.match(unknown.body.toString(), /no sync entry named \\"nope\\"/);
  t.equal((await post(`${mirror.url}/api/sync/%E0%A4%A`)).status, 404, 'a broken escape is no entry either');
  const get = await request(`${mirror.url}/api/sync/nope`);
  t.equal(get.status, 405);
  t.equal(get.headers['allow'], 'POST');
  t.equal(reg.count({ kind: 'blob', pathIncludes: layer.digest }), 1, 'the 409 started nothing');
});

t.test('with a read policy, only an admin may start a sync (both listeners)', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('operate-auth'));
  const ACCESS = { anonymous: ['registry.test/**'], admin: { users: ['alice'] } };
  const ALICE = basic('alice', 'alice-pw');
  const BOB = basic('bob', 'bob-pw');
  const credentials = standInCredentials({ users: { alice: { password: 'alice-pw' }, bob: { password: 'bob-pw' } } });
  for (const metrics of [{}, { listen: '127.0.0.1:0' }]) {
    const mirror = await startMirror(t, {
      upstreams: { [UP]: { url: reg.url } },
      sync: [{ name: 'app', upstream: UP, repository: 'team/app', tags: ['1'] }],
      sections: { auth: {}, access: ACCESS, metrics },
      credentials,
    });
    const port = mirror.app.metricsAddress()?.port;
    const base = port === undefined ? mirror.url : `http://127.0.0.1:${port}`;
    const anonymous = await post(`${base}/api/sync/app`);
    t.equal(anonymous.status, 401);
    t.equal(errorCode(anonymous), 'UNAUTHORIZED');
    const bob = await post(`${base}/api/sync/app`, BOB);
    t.equal(bob.status, 403);
    t.equal(errorCode(bob), 'DENIED');
    const unknown = await post(`${base}/api/sync/nope`, ALICE);
    t.equal(unknown.status, 404, 'an unknown entry on either listener is an OCI 404');
    t.equal(errorCode(unknown), 'NAME_UNKNOWN');
    t.equal((await post(`${base}/api/sync/app`, ALICE)).status, 202);
    await until('the run to finish', async () => (await syncRows(base, ALICE))[0]?.lastOrigin === 'api');
    if (port !== undefined) t.equal((await post(`${mirror.url}/api/sync/app`, ALICE)).status, 404, 'with metrics.listen, the registry port has no sync route');
  }
});

t.test('regmirror sync beside serve: the run happens in the server and its progress streams back', async (t) => {
  const img = quickImage('operate-socket');
  const { reg, mirror } = await startSyncWorld(t, {
    sync: [
      { name: 'app', upstream: UP, repository: 'team/app', tags: ['1'] },
      { name: 'typo', upstream: UP, repository: 'team/ap', tags: ['1'] },
    ],
  });
  reg.pushImage('team/app', '1', img);
  const events: string[] = [];
  const progress: SyncProgress = {
    imageStarted: (job, image, blobs) => events.push(`start ${job} ${image} ${blobs}`),
    blobDone: (job) => events.push(`blob ${job}`),
    imageFinished: (job, image, ok) => events.push(`done ${job} ${image} ${ok}`),
    note: (job, level, message) => events.push(`${level} ${job} ${message}`),
  };
  const result = await runInServer(mirror.storage, { only: 'app', dryRun: false }, progress);
  t.match(result, { ok: true, entries: [{ job: 'app', images: [{ status: 'synced', blobs: 3 }] }] });
  t.same(events, ['start app team/app:1 3', 'blob app', 'blob app', 'blob app', 'done app team/app:1 true']);
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 3, 'the server downloaded it: its cache holds it');
  t.match((await syncRows(mirror.url))[0], { lastOrigin: 'cli', lastResult: 'success' });

  events.length = 0;
  const dry = await runInServer(mirror.storage, { only: 'typo', dryRun: true }, progress);
  t.match(dry, { ok: false, entries: [{ images: [{ status: 'not-found' }] }] });
  t.match(events, [/^error typo team\/ap:1: .*not found upstream/]);

  const list = await callAdmin(mirror.storage, 'GET', '/v1/sync');
  t.match(list.body, { entries: [{ job: 'app', lastOrigin: 'cli' }, { job: 'typo', lastOrigin: null }] });

  for (const [only, message] of [
    ['zzz', '--only zzz matches no sync entry'],
    ['team/ap?', /^--only: segment "ap\?"/],
  ] as const) {
    const refused = await runInServer(mirror.storage, { only, dryRun: false }, progress).catch((err: unknown) => err);
    t.ok(refused instanceof CliError && refused.exitCode === 2, `${only}: a usage error, exit 2`);
    t.match((refused as Error).message, message);
  }
  t.equal((await callAdmin(mirror.storage, 'POST', '/v1/sync', { only: 5 })).status, 422, 'a request that is not one');
  const garbled = await openAdmin(mirror.storage, 'POST', '/v1/sync', Buffer.from('nope'));
  garbled.body.resume();
  t.equal(garbled.status, 422, 'not JSON');
  const huge = await openAdmin(mirror.storage, 'POST', '/v1/sync', Buffer.alloc(70 * 1024, 32));
  huge.body.resume();
  t.equal(huge.status, 413);
  const put = await openAdmin(mirror.storage, 'PUT', '/v1/sync');
  put.body.resume();
  t.equal(put.status, 405);
});

t.test('a CLI run of an entry already running joins it and watches its progress', async (t) => {
  const layer = randomLayer(100_000, 'operate-join');
  const { reg, mirror } = await startSyncWorld(t, { sync: [{ name: 'app', upstream: UP, repository: 'team/app', tags: ['1'] }] });
  reg.pushImage('team/app', '1', buildImage({ layers: [layer] }));
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', pathIncludes: layer.digest }, type: 'pause-after', bytes: 10_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  t.equal((await post(`${mirror.url}/api/sync/app`)).status, 202);
  await until('the layer to be under way', () => reg.filter({ kind: 'blob', pathIncludes: layer.digest }).some((r) => r.bytesSent > 0));
  const heard: string[] = [];
  const watch: SyncProgress = { imageStarted: () => {}, blobDone: () => {}, imageFinished: (_job, image) => heard.push(`finished ${image}`), note: (job, level, message) => heard.push(`${level} ${job}: ${message}`) };
  const joined = runInServer(mirror.storage, { only: 'app', dryRun: false }, watch);
  await until('the CLI to join the running run', () => heard.length > 0);
  t.match(heard, [/^info app: already running since \d{4}-.*Z \(started by the API\); following that run$/]);
  release();
  const result = await joined;
  t.ok(result.ok);
  t.equal(reg.count({ kind: 'blob', pathIncludes: layer.digest }), 1, 'one run, not two');
  t.match((await syncRows(mirror.url))[0], { lastOrigin: 'api' }, 'the run that ran was the API one');
  t.same(heard.slice(1), ['finished team/app:1'], 'and its progress from the join on reached the CLI');
});
