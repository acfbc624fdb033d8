import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { errorCode, request } from '../fixtures/http.js';
import { startMirror, type StartMirrorOptions, type TestMirror } from '../fixtures/mirror.js';
import { basic, standInCredentials } from '../fixtures/stand-in-credentials.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import type { TeardownHost } from '../fixtures/teardown.js';

type File = Record<string, unknown>;

/** A mirror whose POST /api/reload loads its start-up file as `edit` (changeable) rewrites it. */
async function reloadable(t: TeardownHost, extra: Partial<StartMirrorOptions> = {}): Promise<{ mirror: TestMirror; edit: (f: (file: File) => File) => void }> {
  const reg = await startTestRegistry(t);
  let edit = (file: File) => file;
  let started: TestMirror | undefined;
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: reg.url } },
    ...extra,
    loadConfig: async () => {
      if (started === undefined) throw new Error('not started');
      return parseConfig(edit(structuredClone(started.file)), { baseDir: started.storage, env: {} });
    },
  });
  started = mirror;
  return { mirror, edit: (f) => void (edit = f) };
}

function post(url: string, authorization?: string) {
  return request(url, { method: 'POST', headers: authorization === undefined ? {} : { authorization } });
}

async function lastReload(base: string, authorization?: string): Promise<{ ok: boolean; error?: string; restartNeeded: string[] } | null> {
  const res = await request(`${base}/api/status`, { headers: authorization === undefined ? {} : { authorization } });
  return (JSON.parse(res.body.toString()) as { config: { lastReload: { ok: boolean; error?: string; restartNeeded: string[] } | null } }).config.lastReload;
}

t.test('POST /api/reload applies what may change, names what needs a restart, and says so in the status', async (t) => {
  const { mirror, edit } = await reloadable(t);
  t.equal(await lastReload(mirror.url), null, 'nothing reloaded yet');
  edit((f) => ({ ...f, log: { level: 'warn' }, storage: { ...(f['storage'] as File), maxSize: '2GiB' } }));
  const res = await post(`${mirror.url}/api/reload`);
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body.toString()), { changed: ['log.level'], restartNeeded: ['storage.maxSize'] });
  t.equal(mirror.app.logger.level, 'warn', 'the new log level is in force');
  t.match(await lastReload(mirror.url), { ok: true, restartNeeded: ['storage.maxSize'] });
});

t.test('a config that does not load: 422 with the reason, and the running config stays', async (t) => {
  const { mirror, edit } = await reloadable(t);
  edit((f) => ({ ...f, manifestTTL: 'forever', log: { level: 'warn' } }));
  const res = await post(`${mirror.url}/api/reload`);
  t.equal(res.status, 422);
  t.equal(errorCode(res), 'UNSUPPORTED');
  t.match(JSON.parse(res.body.toString()), { errors: [{ message: /^config reload refused, the running config stays: manifestTTL: / }] });
  t.equal(mirror.app.logger.level, 'debug', 'nothing of it applied');
  t.match(await lastReload(mirror.url), { ok: false, error: /manifestTTL/ });
});

t.test('only POST; and no route where nothing loads the config again', async (t) => {
  const { mirror } = await reloadable(t);
  const get = await request(`${mirror.url}/api/reload`);
  t.equal(get.status, 405);
  t.equal(get.headers['allow'], 'POST');
  const reg = await startTestRegistry(t);
  const fileless = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  t.equal((await post(`${fileless.url}/api/reload`)).status, 404);
});

t.test('with a read policy, only an admin may reload (both listeners)', async (t) => {
  const ACCESS = { anonymous: ['docker.io/**'], admin: { users: ['alice'] } };
  const credentials = standInCredentials({ users: { alice: { password: 'alice-pw' }, bob: { password: 'bob-pw' } } });
  for (const metrics of [{}, { listen: '127.0.0.1:0' }]) {
    const { mirror } = await reloadable(t, { sections: { auth: {}, access: ACCESS, metrics }, credentials });
    const port = mirror.app.metricsAddress()?.port;
    const base = port === undefined ? mirror.url : `http://127.0.0.1:${port}`;
    const anonymous = await post(`${base}/api/reload`);
    t.equal(anonymous.status, 401);
    t.equal(errorCode(anonymous), 'UNAUTHORIZED');
    const bob = await post(`${base}/api/reload`, basic('bob', 'bob-pw'));
    t.equal(bob.status, 403);
    t.equal(errorCode(bob), 'DENIED');
    t.equal(await lastReload(base, basic('alice', 'alice-pw')), null, 'the refused calls reloaded nothing');
    t.equal((await post(`${base}/api/reload`, basic('alice', 'alice-pw'))).status, 200);
    t.match(await lastReload(base, basic('alice', 'alice-pw')), { ok: true });
    if (port !== undefined) t.equal((await post(`${mirror.url}/api/reload`, basic('alice', 'alice-pw'))).status, 404, 'with metrics.listen, the registry port has no reload route');
  }
});
