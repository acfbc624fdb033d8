import t from 'tap';
import type { StatusSnapshot } from '../../src/observability/index.js';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { request, type RawResponse } from '../fixtures/http.js';

// The operator's step: a pull fails with 503, they look at the log and at /api/status and must see why.

function message(res: RawResponse): string {
  return (JSON.parse(res.body.toString()) as { errors: Array<{ message: string }> }).errors[0]?.message ?? '';
}

function warns(mirror: TestMirror): Array<Record<string, unknown>> {
  return mirror.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['level'] === 'warn' && String(l['msg']).startsWith('answered 5'));
}

async function status(mirror: TestMirror): Promise<StatusSnapshot> {
  return JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as StatusSnapshot;
}

t.test('an unreachable upstream: one warn line with the code and URL, and the last error on /api/status', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  await reg.stop();
  for (let i = 0; i < 3; i++) t.equal((await request(`${mirror.url}/v2/team/app/manifests/1`)).status, 503);
  const lines = warns(mirror);
  t.equal(lines.length, 1, 'the same cause is logged once a minute, not per request');
  const url = `${reg.url}/v2/team/app/manifests/1`;
  t.equal(lines[0]?.['msg'], `answered 503: upstream docker.io: ECONNREFUSED connecting to ${url}`);
  t.match(lines[0], { upstream: 'docker.io', url, cause: 'ECONNREFUSED', status: 503 });
  const up = (await status(mirror)).upstreams.find((u) => u.name === 'docker.io');
  t.equal(up?.lastError?.cause, `ECONNREFUSED connecting to ${url}`);
  t.match(up?.lastError?.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

t.test('an upstream answering 500: the status is the cause; another cause gets its own line', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('cause-500'));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  t.same((await status(mirror)).upstreams[0]?.lastError, null, 'no error before any failed');
  reg.inject({ match: { kind: 'manifest' }, type: 'status', status: 500 });
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/1`)).status, 503);
  await reg.stop();
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/2`)).status, 503);
  const lines = warns(mirror);
  t.same(
    lines.map((l) => l['cause']),
    ['HTTP 500', 'ECONNREFUSED'],
  );
  t.equal(lines[0]?.['msg'], `answered 503: upstream docker.io: HTTP 500 from ${reg.url}/v2/team/app/manifests/1`);
});

t.test('a host name that does not resolve: ENOTFOUND, said once, not retried', async (t) => {
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: 'http://no-such-registry.invalid:5000' } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
  t.equal(res.status, 503);
  t.equal(message(res), 'upstream docker.io is unreachable (ENOTFOUND), and this content is not cached');
  t.match(warns(mirror)[0], { cause: 'ENOTFOUND', msg: 'answered 503: upstream docker.io: ENOTFOUND connecting to http://no-such-registry.invalid:5000/v2/team/app/manifests/1' });
  const up = (await status(mirror)).upstreams[0];
  t.equal(up?.requests, 1, 'one attempt: a name that does not exist will not exist on retry');
});

t.test('MANIFEST_UNKNOWN names the repository and the reference', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('named-404'));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const res = await request(`${mirror.url}/v2/team/app/manifests/nope`);
  t.equal(res.status, 404);
  t.equal(message(res), 'manifest unknown: upstream docker.io has no team/app:nope');
  const byDigest = await request(`${mirror.url}/v2/team/app/manifests/sha256:${'a'.repeat(64)}`);
  t.equal(message(byDigest), `manifest unknown: upstream docker.io has no team/app@sha256:${'a'.repeat(64)}`);
  const blob = await request(`${mirror.url}/v2/team/app/blobs/sha256:${'b'.repeat(64)}`);
  t.equal(blob.status, 404);
  t.equal(warns(mirror).length, 0, 'a 404 is an answer, not a failure to log');
});
