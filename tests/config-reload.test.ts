import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { configChanges, loadConfigFile, parseConfig, sameValue } from '../src/config/index.js';
import { Swappable } from '../src/swappable.js';
import { cosignKey, cosignSign } from './fixtures/cosign.js';
import { FakeTimers } from './fixtures/fake-timers.js';
import { errorCode, request } from './fixtures/http.js';
import { buildImage, buildLayer, quickImage, randomLayer, sha256 } from './fixtures/images.js';
import { startMirror, type TestMirror } from './fixtures/mirror.js';
import { until } from './fixtures/poll.js';
import { startTestRegistry } from './fixtures/test-registry.js';
import type { TeardownHost } from './fixtures/teardown.js';

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' };
type File = Record<string, unknown>;

/** Reloads `mirror` from its start-up config file as `edit` changes it (a copy). */
function reload(mirror: TestMirror, edit: (file: File) => File) {
  const file = edit(structuredClone(mirror.file));
  return mirror.app.reload(async () => parseConfig(file, { baseDir: mirror.storage, env: {} }));
}

function upstreamsWith(file: File, name: string, fields: File): File {
  const upstreams = file['upstreams'] as Record<string, File>;
  return { ...upstreams, [name]: { ...upstreams[name], ...fields } };
}

async function status(mirror: TestMirror): Promise<{ config: { loadedAt: string; lastReload: { ok: boolean; error?: string; restartNeeded: string[] } | null }; policy: { rules: number } }> {
  return JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as never;
}

/** The JSON log lines written since `from`. */
function linesSince(mirror: TestMirror, from: number): { level: string; msg: string; [k: string]: unknown }[] {
  return mirror.logs.slice(from).map((l) => JSON.parse(l) as { level: string; msg: string });
}

function tempDir(t: TeardownHost): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'regmirror-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('new upstream credentials apply, and tokens issued to the old ones are dropped', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  const img = buildImage({ layers: [buildLayer({ f: 'one' })] });
  reg.pushImage('private/app', '1', img);
  reg.pushImage('private/app', '2', buildImage({ layers: [buildLayer({ f: 'two' })] }));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: 'wrong' } } });

  t.equal((await request(`${mirror.url}/v2/private/app/manifests/1`, { headers: ACCEPT })).status, 502, 'the wrong password fails');
  const fixed = await reload(mirror, (f) => ({ ...f, upstreams: upstreamsWith(f, 'docker.io', { password: 'right' }) }));
  t.same(fixed, { ok: true, changed: ['upstreams.docker.io.password'], restartNeeded: [] });
  t.equal((await request(`${mirror.url}/v2/private/app/manifests/1`, { headers: ACCEPT })).status, 200, 'the right one, without a restart');

  // A token for private/app is cached now; a client still holding it would pull tag 2 with it.
  await reload(mirror, (f) => ({ ...f, upstreams: upstreamsWith(f, 'docker.io', { password: 'wrong-again' }) }));
  const res = await request(`${mirror.url}/v2/private/app/manifests/2`, { headers: ACCEPT });
  t.equal(res.status, 502, 'the token issued to the old credentials went with them');
  t.match(res.body.toString(), /credentials/);
  t.notOk(mirror.logs.some((l) => l.includes('wrong-again') || l.includes('"right"')), 'no password in any log line');
  const s = await status(mirror);
  t.equal(s.config.lastReload?.ok, true);
  t.match((await mirror.app.metrics.exposition()).body, /regmirror_config_reloads_total\{result="applied"\} 2/);
});

t.test('a blob download in flight during a reload completes with the right digest', async (t) => {
  const reg = await startTestRegistry(t);
  const layer = randomLayer(2_000_000, 'in-flight');
  const img = buildImage({ layers: [layer] });
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 100_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  const pulling = request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  await until('the download to be under way', () => reg.filter({ kind: 'blob' }).some((r) => r.bytesSent > 0));

  // New credentials replace the upstream client; the old one keeps its download.
  const outcome = await reload(mirror, (f) => ({ ...f, upstreams: upstreamsWith(f, 'docker.io', { username: 'u', password: 'p' }), log: { level: 'info' } }));
  t.equal(outcome.ok, true);
  release();
  const res = await pulling;
  t.equal(res.status, 200);
  t.equal(sha256(res.body), layer.digest, 'every byte arrived');
  await mirror.app.settled();
  t.equal((await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`)).status, 200, 'and it was cached');
  t.equal(reg.filter({ kind: 'blob', method: 'GET' }).length, 1, 'served from the cache the second time');
});

t.test('policy rules come and go with a reload', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('policy-reload');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const pull = () => request(`${mirror.url}/v2/team/app/manifests/1`, { headers: ACCEPT });
  t.equal((await pull()).status, 200, 'no policy at start');

  const deny = [{ name: 'no-app', repositories: ['docker.io/team/*'], deny: [img.manifestDigest] }];
  t.same((await reload(mirror, (f) => ({ ...f, policy: deny }))).changed, ['policy']);
  const refused = await pull();
  t.equal(refused.status, 403);
  t.equal(errorCode(refused), 'DENIED');
  t.equal((await status(mirror)).policy.rules, 1, 'the status counts the rules in force');

  // A rule whose key cannot be read refuses the whole reload: the deny rule stays.
  const before = mirror.logs.length;
  const broken = await reload(mirror, (f) => ({ ...f, policy: [{ repositories: ['docker.io/**'], requireSignature: { keys: ['/nonexistent/key.pub'] } }], log: { level: 'warn' } }));
  t.equal(broken.ok, false);
  t.match(broken.error, /policy\[0\]\.requireSignature\.keys\[0\]: cannot read/);
  t.equal((await pull()).status, 403, 'the old policy is still in force');
  t.equal(mirror.app.logger.level, 'debug', 'and nothing else of the refused config applied');
  const lines = linesSince(mirror, before).filter((l) => /config reload/.test(l.msg));
  t.equal(lines.length, 1, 'one line');
  t.equal(lines[0]?.level, 'error', 'at error level');

  await reload(mirror, (f) => f);
  t.equal((await pull()).status, 200, 'no rules again');
});

t.test('sync entries are added, changed and removed; a run in flight finishes', async (t) => {
  const timers = new FakeTimers();
  const reg = await startTestRegistry(t);
  const img = buildImage({ layers: [randomLayer(200_000, 'sync-reload')] });
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, {
    upstreams: { 'registry.test': { url: reg.url } },
    syncTimers: timers,
    sync: { jitter: '0', entries: [{ name: 'old', upstream: 'registry.test', repository: 'team/old', tags: ['1'], schedule: '1h' }] },
  });
  const states = () => mirror.app.sync.states();
  t.equal(timers.armed, 1);

  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET', pathIncludes: img.layers[0]?.digest ?? 'x' }, type: 'pause-after', bytes: 10_000, release: new Promise<void>((r) => (release = r)), times: 1 });
  const entries = [
    { name: 'app', upstream: 'registry.test', repository: 'team/app', tags: ['1'], runOnStart: true, schedule: '6h' },
    { name: 'old', upstream: 'registry.test', repository: 'team/old', tags: ['1'], schedule: '2h' },
    { name: 'later', upstream: 'registry.test', repository: 'team/later', tags: ['1'], schedule: '1d' },
  ];
  const added = await reload(mirror, (f) => ({ ...f, sync: { jitter: '0', entries } }));
  t.same(added.changed, ['sync.entries']);
  timers.advance(0);
  await until('the added entry to run', () => states().find((s) => s.job === 'app')?.running === true);
  t.equal(states().find((s) => s.job === 'old')?.nextRunAt, timers.now() + 2 * 3_600_000, 'the changed schedule is planned afresh');
  t.equal(states().find((s) => s.job === 'later')?.nextRunAt, timers.now() + 86_400_000, 'an added entry is planned');
  await until('its blob to be under way', () => reg.filter({ kind: 'blob' }).some((r) => r.bytesSent > 0));

  // Removed while it runs: the run goes on to its end, and nothing is planned after it.
  await reload(mirror, (f) => ({ ...f, sync: { jitter: '0', entries: [entries[1]] } }));
  t.same(
    states().map((s) => s.job),
    ['old'],
  );
  release();
  await until('the run to finish', () => mirror.app.metrics.tracker.syncJobs.get('app')?.running === false);
  t.equal(mirror.app.metrics.tracker.syncJobs.get('app')?.lastResult, 'success', 'the run in flight completed');
  t.equal(timers.armed, 1, 'only the remaining entry is armed');
  const pulls = reg.count({ kind: 'manifest', pathIncludes: 'team/app' });
  timers.advance(24 * 3_600_000);
  await until('the remaining entry to run', () => mirror.app.metrics.tracker.syncJobs.get('old')?.lastResult !== undefined);
  t.equal(reg.count({ kind: 'manifest', pathIncludes: 'team/app' }), pulls, 'the removed entry never ran again');
});

t.test('the log level and pins change; a broken file is refused with one line, then a good one applies', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('pins-reload');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: ACCEPT })).status, 200);
  await request(`${mirror.url}/v2/team/app/blobs/${img.layers[0]?.digest}`);
  await mirror.app.settled();
  t.equal(mirror.app.cache.pinnedBytes, 0);

  const pinned = await reload(mirror, (f) => ({ ...f, storage: { ...(f['storage'] as File), pin: ['docker.io/team/*'] }, log: { level: 'warn' } }));
  t.same(pinned.changed, ['storage.pin', 'log.level']);
  t.equal(mirror.app.logger.level, 'warn');
  t.ok(mirror.app.cache.pinnedBytes > 0, 'what is cached for the new pattern is pinned now');

  const dir = tempDir(t);
  const file = path.join(dir, 'mirror.config.json');
  writeFileSync(file, '{\n  "upstreams": {\n    "docker.io": { "url": "http://x" ,, }\n  }\n}\n');
  const before = mirror.logs.length;
  const broken = await mirror.app.reload(() => loadConfigFile(file));
  t.equal(broken.ok, false);
  const lines = linesSince(mirror, before);
  t.equal(lines.length, 1, 'one log line');
  t.equal(lines[0]?.level, 'error');
  t.match(lines[0]?.msg, /config reload refused.*not valid JSON.*line 3/);
  t.equal(mirror.app.logger.level, 'warn', 'the old config stays in force');
  t.ok(mirror.app.cache.pinnedBytes > 0);
  const s = await status(mirror);
  t.equal(s.config.lastReload?.ok, false);
  t.match(s.config.lastReload?.error, /line 3/);
  t.match((await mirror.app.metrics.exposition()).body, /regmirror_config_reloads_total\{result="refused"\} 1/);

  t.same((await reload(mirror, (f) => f)).changed, ['storage.pin', 'log.level'], 'a later valid reload applies');
  t.equal(mirror.app.logger.level, 'debug');
  t.equal(mirror.app.cache.pinnedBytes, 0, 'unpinned again');
});

t.test('keys that need a restart are named and keep their running value; the rest applies', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const other = tempDir(t);
  const before = mirror.logs.length;
  const outcome = await reload(mirror, (f) => ({
    ...f,
    listen: '127.0.0.1:1',
    storage: { ...(f['storage'] as File), path: other },
    upstreams: upstreamsWith(f, 'docker.io', { url: 'http://127.0.0.1:9', username: 'u', password: 'p' }),
    manifestTTL: '1h',
    log: { level: 'info' },
  }));
  t.equal(outcome.ok, true);
  t.same(outcome.restartNeeded, ['listen', 'storage.path', 'upstreams.docker.io.url', 'manifestTTL']);
  t.same(outcome.changed, ['upstreams.docker.io.username', 'upstreams.docker.io.password', 'log.level']);
  const warn = linesSince(mirror, before).filter((l) => l.level === 'warn');
  t.equal(warn.length, 1, 'one warn line');
  t.match(warn[0]?.msg, /listen needs a restart, storage\.path needs a restart, upstreams\.docker\.io\.url needs a restart, manifestTTL needs a restart/);
  t.equal(mirror.app.logger.level, 'info');
  t.same((await status(mirror)).config.lastReload?.restartNeeded, outcome.restartNeeded);
  // Still listening where it was, still pulling from the upstream it was started with.
  reg.pushImage('team/app', '1', quickImage('restart'));
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: ACCEPT })).status, 200);
  t.equal(mirror.app.config.storage.path, mirror.storage);
});

t.test('what a reload reports: nothing changed, several mistakes, a failure that is no config error, a removed upstream', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url }, 'ghcr.io': { url: reg.url } } });
  const before = mirror.logs.length;
  t.same(await reload(mirror, (f) => f), { ok: true, changed: [], restartNeeded: [] });
  t.match(linesSince(mirror, before)[0]?.msg, 'config reloaded: nothing to change');

  const two = await reload(mirror, (f) => ({ ...f, manifestTTL: 'soon', nonsense: 1 }));
  t.match(two.error, /nonsense.*\(and 1 more: regmirror config check lists them all\)|manifestTTL.*\(and 1 more/);
  t.same(await mirror.app.reload(() => Promise.reject(new Error('disk on fire'))), { ok: false, error: 'disk on fire', changed: [], restartNeeded: [] });

  const removed = await reload(mirror, (f) => ({ ...f, upstreams: { 'docker.io': (f['upstreams'] as Record<string, File>)['docker.io'] } }));
  t.same(removed.restartNeeded, ['upstreams.ghcr.io']);
  t.equal(removed.ok, true);
});

t.test('configChanges names paths in the file\'s words and compares what a Config holds', async (t) => {
  t.same(configChanges({ a: { connectMs: 1, manifestTTLms: 2, upstreams: 3, officialLibrary: true } }, { a: { connectMs: 2, manifestTTLms: 3, upstreams: 4, officialLibrary: false } }), [
    'a.connect',
    'a.manifestTTL',
    'a.upstreams',
    'a.library',
  ]);
  t.same(configChanges({ listen: { host: 'a', port: 1 } }, { listen: { host: 'a', port: 2 } }), ['listen'], 'an address is one key');
  t.same(configChanges({ m: new Map([['x', 1]]) }, { m: new Map([['x', 2]]) }), ['m.x']);
  t.same(configChanges({ a: undefined }, {}), [], 'undefined is the same as absent');
  t.ok(sameValue(new URL('http://a/'), new URL('http://a')));
  t.notOk(sameValue(new URL('http://a/'), 'http://a/'));
  t.ok(sameValue(/x/i, /x/i));
  t.notOk(sameValue(/x/i, /x/));
  t.notOk(sameValue([1, 2], [1]));
  t.notOk(sameValue([1], { 0: 1 }));
  t.notOk(sameValue(new Map(), {}), 'a Map is not an object');
  t.notOk(sameValue(1, '1'));
});

t.test('a Swappable forwards members and methods to the implementation in force', async (t) => {
  class Named {
    constructor(readonly name: string) {}
    hello(): string {
      return `hello from ${this.name}`;
    }
  }
  const holder = new Swappable(new Named('a'));
  const { value } = holder;
  t.equal(value.name, 'a');
  t.equal(holder.swap(new Named('b')).name, 'a', 'swap returns the one replaced');
  t.equal(value.name, 'b');
  t.equal(value.hello(), 'hello from b');
  t.equal(holder.current.name, 'b');
});

t.test('a requireSignature key rotated on disk applies with the next SIGHUP, the policy itself unchanged', async (t) => {
  const reg = await startTestRegistry(t);
  const dir = tempDir(t);
  const [old, rotated] = [cosignKey(dir, 'old'), cosignKey(dir, 'new')];
  const keyFile = path.join(dir, 'policy.pub');
  copyFileSync(old.publicFile, keyFile);
  const img = buildImage({ layers: [buildLayer({ f: 'signed' })], format: 'oci' });
  reg.pushImage('team/app', '1', img);
  cosignSign(reg, 'team/app', { digest: img.manifestDigest, size: img.manifest.length }, rotated);
  const policy = [{ name: 'signed', repositories: ['docker.io/team/**'], requireSignature: { keys: [keyFile] } }];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, sections: { policy } });
  const pull = async () => (await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: ACCEPT })).status;
  t.equal(await pull(), 403, 'signed by a key the file does not hold yet');
  copyFileSync(rotated.publicFile, keyFile);
  t.same((await reload(mirror, (f) => f)).changed, []);
  t.equal(await pull(), 200, 'the rotated key was read again');
});
