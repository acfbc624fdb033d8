import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { Readiness, type ReadinessCheck } from '../../src/http/index.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { readyzUntil, request } from '../fixtures/http.js';
import { parseExposition } from '../fixtures/prometheus.js';
import { storageLayout } from '../../src/storage/layout.js';

t.test('/healthz and /readyz answer outside /v2/', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const health = await request(`${mirror.url}/healthz`);
  t.equal(health.status, 200);
  t.same(JSON.parse(health.body.toString()), { status: 'ok' });
  const ready = await request(`${mirror.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(JSON.parse(ready.body.toString()), { status: 'ok' });
  t.equal((await request(`${mirror.url}/readyz`, { method: 'HEAD' })).status, 200);
  const post = await request(`${mirror.url}/healthz`, { method: 'POST' });
  t.equal(post.status, 405);
  t.equal(post.headers['allow'], 'GET, HEAD');
  t.equal((await request(`${mirror.url}/nothing-here`)).status, 404);
  t.equal(reg.requests.length, 0, 'probes never reach the upstream');
});

t.test('/readyz stays 200 but reports degraded when storage is not writable, and recovers', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  t.same(JSON.parse((await request(`${mirror.url}/readyz`)).body.toString()), { status: 'ok' });
  // Root ignores permissions, so break the probe path itself: the temp dir becomes a regular file.
  const tmp = storageLayout(mirror.storage).tmpDir;
  rmSync(tmp, { recursive: true });
  writeFileSync(tmp, 'not a directory');
  const down = await readyzUntil(mirror.url, { status: 200, state: 'degraded' });
  t.equal(down.status, 200, 'still ready: every pull is served from upstream');
  const body = JSON.parse(down.body.toString()) as { status: string; reasons: string[] };
  t.equal(body.status, 'degraded');
  t.same(body.reasons, ['storage: not writable (ENOTDIR): serving without caching']);
  rmSync(tmp);
  mkdirSync(tmp);
  t.same(JSON.parse((await readyzUntil(mirror.url, { status: 200, state: 'ok' })).body.toString()), { status: 'ok' });
});

t.test('Readiness answers not ready once shutdown began', async (t) => {
  const readiness = new Readiness([]);
  t.same(await readiness.check(), { ok: true, reasons: [] });
  readiness.shutdown();
  t.same(await readiness.check(), { ok: false, reasons: ['shutting down'] });
});

t.test('Readiness: one run for concurrent probes, results reused, slow and failing checks reported', async (t) => {
  let clock = 0;
  let runs = 0;
  let fail: Error | undefined;
  const counted: ReadinessCheck = {
    name: 'metadata',
    run: async () => {
      runs++;
      await sleep(10);
      if (fail) throw fail;
    },
  };
  const slow: ReadinessCheck = { name: 'slow', run: () => sleep(200) };
  const readiness = new Readiness([counted], { cacheMs: 1000, now: () => clock });
  const answers = await Promise.all([readiness.check(), readiness.check(), readiness.check()]);
  t.equal(runs, 1, 'concurrent probes share one run');
  for (const a of answers) t.same(a, { ok: true, reasons: [] });
  fail = Object.assign(new Error('connect ECONNREFUSED redis://:hunter2@10.0.0.1'), { code: 'ECONNREFUSED' });
  t.same(await readiness.check(), { ok: true, reasons: [] }, 'reused within cacheMs');
  t.equal(runs, 1);
  clock += 1000;
  t.same(await readiness.check(), { ok: false, reasons: ['metadata: failed (ECONNREFUSED)'] }, 'the code, never the message');
  t.equal(runs, 2);
  const timed = new Readiness([slow], { timeoutMs: 20 });
  t.same(await timed.check(), { ok: false, reasons: ['slow: no answer within 20 ms'] });
});

t.test('with metrics.listen, metrics and status move to their own listener; probes stay on both', async (t) => {
  const reg = await startTestRegistry(t);
  const storage = mkdtempSync(path.join(os.tmpdir(), 'regmirror-ops-'));
  t.teardown(() => rmSync(storage, { recursive: true, force: true }));
  const config = parseConfig(
    { listen: '127.0.0.1:0', storage: { path: storage }, upstreams: { 'docker.io': { url: reg.url } }, metrics: { listen: '127.0.0.1:0' }, log: { level: 'silent' } },
    { baseDir: storage, env: {} },
  );
  const app = new App(config);
  const main = await app.start();
  t.teardown(() => app.close(1000));
  const ops = app.metricsAddress();
  t.ok(ops && ops.port > 0 && ops.port !== main.port, 'a second port');
  const mainUrl = `http://127.0.0.1:${main.port}`;
  const opsUrl = `http://127.0.0.1:${ops?.port}`;
  for (const p of ['/metrics', '/api/status', '/api/images', '/']) t.equal((await request(`${mainUrl}${p}`)).status, 404, `main listener: no ${p}`);
  for (const p of ['/healthz', '/readyz']) {
    t.equal((await request(`${mainUrl}${p}`)).status, 200, `main listener: ${p}`);
    t.equal((await request(`${opsUrl}${p}`)).status, 200, `metrics listener: ${p}`);
  }
  t.equal((await request(`${mainUrl}/v2/`)).status, 200);
  t.equal((await request(`${opsUrl}/v2/`)).status, 404, 'no registry API on the metrics listener');
  const metrics = await request(`${opsUrl}/metrics`);
  t.equal(metrics.status, 200);
  t.ok(parseExposition(metrics.body.toString()).families.has('regmirror_cache_lookups_total'));
  const status = await request(`${opsUrl}/api/status`);
  const snapshot = JSON.parse(status.body.toString()) as { service: string; endpoint?: { port: number } };
  t.equal(snapshot.service, 'regmirror');
  t.equal(snapshot.endpoint?.port, main.port, 'the node snippets name the registry port, not this one');
  t.equal((await request(`${opsUrl}/api/images`)).status, 200);
  const page = await request(`${opsUrl}/`);
  t.match(String(page.headers['content-type']), /^text\/html/);
  t.match(page.body.toString(), /<title>regmirror status<\/title>/);
  await app.close(1000);
  await t.rejects(request(`${opsUrl}/metrics`), 'the metrics listener closes with the app');
});
