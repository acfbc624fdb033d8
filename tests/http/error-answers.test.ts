import t from 'tap';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request, type RawResponse } from '../fixtures/http.js';
import { putRandomBlobs } from '../fixtures/cache.js';

// A client learns which upstream failed and how, never where the upstream lives: its address and the
// request URL belong in the mirror's log.

function message(res: RawResponse): string {
  return (JSON.parse(res.body.toString()) as { errors: Array<{ message: string }> }).errors[0]?.message ?? '';
}

t.test('an upstream that answers 500: "answered 500", without its address', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('answers-500'));
  const [blob] = putRandomBlobs(reg, 'team/app', 1, 1024) as [string];
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  reg.inject({ match: { kind: 'manifest' }, type: 'status', status: 500 });
  reg.inject({ match: { kind: 'blob' }, type: 'status', status: 500 });
  for (const path of ['/v2/team/app/manifests/1', `/v2/team/app/blobs/${blob}`]) {
    const res = await request(`${mirror.url}${path}`);
    t.equal(res.status, 503, path);
    t.equal(errorCode(res), 'UNAVAILABLE');
    t.equal(message(res), 'upstream docker.io answered 500, and this content is not cached');
    t.notMatch(res.body.toString(), new RegExp(`${reg.host}|127\\.0\\.0\\.1|http:`), 'no address, no URL');
  }
  t.ok(mirror.logs.some((l) => l.includes(reg.host)), 'the mirror log still says which URL failed');
});

t.test('an unreachable upstream: "is unreachable (ECONNREFUSED)", without its address', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  await reg.stop();
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
  t.equal(res.status, 503);
  t.equal(message(res), 'upstream docker.io is unreachable (ECONNREFUSED), and this content is not cached');
  t.notMatch(res.body.toString(), new RegExp(`${reg.host}|127\\.0\\.0\\.1|http:`));
});

t.test('an invalid upstream answer says what was wrong, without the URL', async (t) => {
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  reg.inject({ match: { kind: 'manifest' }, type: 'status', status: 302 });
  const res = await request(`${mirror.url}/v2/team/app/manifests/1`);
  t.equal(res.status, 502);
  t.equal(message(res), 'upstream docker.io sent an invalid response: 302 without Location');
  t.notMatch(res.body.toString(), new RegExp(`${reg.host}|127\\.0\\.0\\.1|http:`));
});

t.test('a manifest whose digest does not match gets a warn line, like a blob', async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('manifest-mismatch');
  const digest = reg.pushImage('team/app', '1', image);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  reg.inject({ match: { kind: 'manifest' }, type: 'wrong-bytes' });
  const res = await request(`${mirror.url}/v2/team/app/manifests/${digest}`, { headers: { accept: image.mediaType } });
  t.equal(res.status, 502);
  t.match(message(res), /^upstream docker\.io sent an invalid response: manifest digest sha256:[0-9a-f]{64} does not match sha256:/);
  const warns = mirror.logs.filter((l) => l.includes('"level":"warn"') && l.includes('manifest digest mismatch'));
  t.equal(warns.length, 1);
  t.match(JSON.parse(warns[0] ?? '{}'), { upstream: 'docker.io', repository: 'team/app', digest });
});
