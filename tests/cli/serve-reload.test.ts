import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { request } from '../fixtures/http.js';
import { quickImage } from '../fixtures/images.js';
import { until } from '../fixtures/poll.js';
import { startRegmirror } from '../fixtures/regmirror-process.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' };
const LISTENING = /"msg":"regmirror listening".*"address":"([\d.]+:\d+)"|"address":"([\d.]+:\d+)".*"msg":"regmirror listening"/;

t.test('SIGHUP to regmirror serve: credentials, policy, sync, log level; a broken file is refused, restart-only keys are named', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', username: 'mirror', password: 'right' } });
  const img = quickImage('hup');
  reg.pushImage('team/app', '1', img);
  reg.pushImage('team/other', '1', quickImage('hup-sync'));
  const dir = t.testdir({});
  const file = path.join(dir, 'mirror.config.json');
  const base = { listen: '127.0.0.1:0', storage: { path: 'cache' }, log: { level: 'info' } };
  const upstream = { url: reg.url, username: 'mirror' };
  const write = (config: object) => writeFileSync(file, JSON.stringify({ ...base, ...config }));
  write({ upstreams: { 'registry.test': { ...upstream, password: 'wrong' } } });
  // Not startServe: it sets --listen and --log-level, which would win over the file at every reload too.
  const daemon = startRegmirror(t, ['serve', '--config', file], { ...process.env, RELOAD_TEST_PASSWORD: 'right' });
  const m = await daemon.waitForLine(LISTENING, 60_000);
  const url = `http://${m[1] ?? m[2] ?? ''}`;
  const pull = async () => (await request(`${url}/v2/team/app/manifests/1`, { headers: ACCEPT })).status;
  const reloads = async (result: string) => Number(new RegExp(`regmirror_config_reloads_total\\{result="${result}"\\} (\\d+)`).exec((await request(`${url}/metrics`)).body.toString())?.[1]);
  const hup = async (result: 'applied' | 'refused') => {
    const before = await reloads(result);
    const lines = daemon.lines.length;
    daemon.kill('SIGHUP');
    await until(`a reload ${result}`, () => reloads(result), (n) => n === before + 1);
    return daemon.lines.slice(lines);
  };
  t.equal(await pull(), 502, 'the wrong password fails');

  // passwordEnv is read again from the environment the server started with.
  write({ upstreams: { 'registry.test': { ...upstream, passwordEnv: 'RELOAD_TEST_PASSWORD' } } });
  t.match((await hup('applied')).join('\n'), /"msg":"config reloaded: upstreams\.registry\.test\.password"/);
  t.equal(await pull(), 200, 'the right password, without a restart');

  const upstreams = { 'registry.test': { ...upstream, passwordEnv: 'RELOAD_TEST_PASSWORD' } };
  const policy = [{ name: 'no-app', repositories: ['registry.test/team/app'], deny: [img.manifestDigest] }];
  write({ upstreams, policy });
  await hup('applied');
  t.equal(await pull(), 403, 'the new policy refuses it');

  const sync = [{ name: 'added', upstream: 'registry.test', repository: 'team/other', tags: ['1'], runOnStart: true }];
  write({ upstreams, policy, sync });
  await hup('applied');
  await daemon.waitForLine(/"job":"added".*"msg":"sync run finished"|"msg":"sync run finished".*"job":"added"/, 30_000);
  t.ok(reg.count({ kind: 'manifest', pathIncludes: 'team/other' }) > 0, 'the added entry ran');

  write({ upstreams, policy, sync, log: { level: 'warn' } });
  t.notMatch((await hup('applied')).join('\n'), /config reloaded/, 'at warn, the info line of that very reload is not written');

  writeFileSync(file, '{\n  "listen": "127.0.0.1:0",\n  "upstreams": {,}\n}\n');
  const refused = await hup('refused');
  t.equal(refused.length, 1, 'one line');
  t.match(refused[0], /"level":"error".*config reload refused.*not valid JSON.*line 3/);
  t.equal(await pull(), 403, 'the old config stays in force');

  write({ upstreams, sync, listen: '127.0.0.1:1', log: { level: 'info' } });
  const applied = (await hup('applied')).join('\n');
  t.match(applied, /"level":"warn".*"msg":"config reload: listen needs a restart; the running value stays until then"/);
  t.match(applied, /"msg":"config reloaded: log\.level, policy"/);
  t.equal(await pull(), 200, 'the policy is gone, and the server is still where it was');
});

t.test('POST /api/reload to regmirror serve reads the file it started with again', async (t) => {
  const reg = await startTestRegistry(t);
  const dir = t.testdir({});
  const file = path.join(dir, 'mirror.config.json');
  const write = (config: object) => writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', storage: { path: 'cache' }, upstreams: { 'registry.test': { url: reg.url } }, ...config }));
  write({ log: { level: 'info' } });
  const daemon = startRegmirror(t, ['serve', '--config', file]);
  const m = await daemon.waitForLine(LISTENING, 60_000);
  const url = `http://${m[1] ?? m[2] ?? ''}`;
  write({ log: { level: 'debug' }, storage: { path: 'cache', maxSize: '2GiB' } });
  const applied = await request(`${url}/api/reload`, { method: 'POST' });
  t.equal(applied.status, 200);
  t.same(JSON.parse(applied.body.toString()), { changed: ['log.level'], restartNeeded: ['storage.maxSize'] });
  writeFileSync(file, '{ "upstreams": ');
  const refused = await request(`${url}/api/reload`, { method: 'POST' });
  t.equal(refused.status, 422);
  t.match(refused.body.toString(), /config reload refused, the running config stays: .*not valid JSON/);
});
