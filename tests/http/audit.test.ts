import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AccessChallenge, AccessDenied, allowAll, type AccessController } from '../../src/access/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { request, type RawResponse } from '../fixtures/http.js';
import { buildMirror, startMirror, type StartMirrorOptions, type TestMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { until } from '../fixtures/poll.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

type Line = Record<string, unknown>;

/** A mirror over one upstream with `library/alpine:3`, writing its audit log to a file in the test's dir. */
async function world(t: Test, options: Partial<StartMirrorOptions> = {}) {
  const reg = await startTestRegistry(t);
  const img = quickImage('audit');
  reg.pushImage('library/alpine', '3', img);
  const file = path.join(t.testdir({}), 'logs', 'audit.log');
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, library: true } }, auditLog: { path: file }, ...options });
  return { reg, img, mirror, file };
}

function readLines(file: string): Line[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line) : [];
}

/** The mirror closes (flushing the audit log); then its lines, by request id. */
async function linesAfterClose(mirror: TestMirror, file: string): Promise<{ all: Line[]; of(res: RawResponse): Line[] }> {
  await mirror.close();
  const all = readLines(file);
  return { all, of: (res) => all.filter((l) => l['requestId'] === res.headers['x-request-id']) };
}

t.test('one line per pull, with what was served and from where', async (t) => {
  const { img, mirror, file } = await world(t);
  const layer = img.layers[0]!;
  const coldManifest = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  const warmManifest = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  const headManifest = await request(`${mirror.url}/v2/alpine/manifests/3`, { method: 'HEAD', headers: { accept: ACCEPT } });
  const coldBlob = await request(`${mirror.url}/v2/alpine/blobs/${layer.digest}`);
  t.equal(sha256(coldBlob.body), layer.digest);
  await mirror.app.settled();
  const warmBlob = await request(`${mirror.url}/v2/alpine/blobs/${layer.digest}`);
  const headBlob = await request(`${mirror.url}/v2/alpine/blobs/${layer.digest}`, { method: 'HEAD' });
  const missing = await request(`${mirror.url}/v2/alpine/manifests/nope`, { headers: { accept: ACCEPT } });
  const tags = await request(`${mirror.url}/v2/alpine/tags/list`);
  const ping = await request(`${mirror.url}/v2/`);
  const bad = await request(`${mirror.url}/v2/Alpine/manifests/3`);
  await request(`${mirror.url}/healthz`);
  const metrics = (await mirror.app.metrics.exposition()).body;
  const { all, of } = await linesAfterClose(mirror, file);

  const pull = { log: 'audit', subject: 'anonymous', method: 'anonymous', client: '127.0.0.1', upstream: 'docker.io', repository: 'library/alpine', attempted: null };
  const manifest = { ...pull, action: 'pull_manifest', reference: '3', digest: img.manifestDigest, status: 200 };
  t.match(of(coldManifest), [{ ...manifest, source: 'upstream', head: false, bytes: img.manifest.length }], 'cold manifest: from upstream');
  t.match(of(warmManifest), [{ ...manifest, source: 'cache', head: false }], 'warm manifest: from the cache');
  t.match(of(headManifest), [{ ...manifest, source: 'cache', head: true, bytes: 0 }], 'HEAD is a pull, marked');
  const blob = { ...pull, action: 'pull_blob', reference: layer.digest, digest: layer.digest, status: 200 };
  t.match(of(coldBlob), [{ ...blob, source: 'upstream', bytes: layer.size }]);
  t.match(of(warmBlob), [{ ...blob, source: 'cache', bytes: layer.size }]);
  t.match(of(headBlob), [{ ...blob, head: true, bytes: 0 }]);
  t.match(of(missing), [{ ...pull, action: 'pull_manifest', reference: 'nope', digest: null, status: 404, bytes: 0, source: null }], 'a 404 is a pull that found nothing');
  t.match(of(tags), [{ ...pull, action: 'list_tags', reference: null, status: 200 }]);
  t.same(of(ping), [], '/v2/ is no line');
  t.match(of(bad), [{ action: 'bad_request', subject: 'anonymous', status: 400, repository: null }]);
  t.equal(all.length, 9, 'nothing else: no probe, no ping');
  for (const line of all) t.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.match(metrics, /regmirror_audit_lines_total\{result="dropped"\} 0/);
});

/** A stand-in for the read policy: alice/right may read; a wrong password or any bearer token is challenged; bob is denied. */
const standIn: Pick<AccessController, 'authorize'> = {
  authorize: async (req) => {
    const auth = req.headers.authorization;
    if (auth === undefined) throw new AccessChallenge('log in', 'Basic realm="mirror"');
    if (auth === `Basic ${Buffer.from('alice:right').toString('base64')}`) return { principal: 'alice', identity: { subject: 'alice', kind: 'user', method: 'basic', groups: [] } };
    if (auth === `Basic ${Buffer.from('bob:right').toString('base64')}`) throw new AccessDenied('not yours', 'bob');
    throw new AccessChallenge('bad credentials', 'Basic realm="mirror"');
  },
};

t.test('refused requests: denied or auth_failed, with who is known', async (t) => {
  const { reg, mirror, file } = await world(t, { access: { ...allowAll, ...standIn } });
  const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, accept: ACCEPT });
  reg.resetRequests();
  const anonymous = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  const wrong = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: basic('alice', 'wrong') });
  const bob = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: basic('bob', 'right') });
  const discovery = await request(`${mirror.url}/v2/`);
  const badLogin = await request(`${mirror.url}/v2/`, { headers: basic('mallory', 'guess') });
  t.same([anonymous.status, wrong.status, bob.status, discovery.status, badLogin.status], [401, 401, 403, 401, 401]);
  t.equal(reg.count(), 0, 'nothing refused reached upstream');
  const alice = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: basic('alice', 'right') });
  t.equal(alice.status, 200);
  const { all, of } = await linesAfterClose(mirror, file);

  t.match(of(anonymous), [{ action: 'denied', attempted: 'pull_manifest', subject: 'anonymous', method: 'anonymous', repository: 'library/alpine', reference: '3', status: 401 }]);
  t.match(of(wrong), [{ action: 'auth_failed', attempted: 'pull_manifest', subject: 'alice', method: 'basic', status: 401 }], 'the user name tried');
  t.match(of(bob), [{ action: 'denied', attempted: 'pull_manifest', subject: 'bob', method: 'basic', status: 403 }]);
  t.same(of(discovery), [], 'the login discovery step is no line');
  t.match(of(badLogin), [{ action: 'auth_failed', attempted: null, subject: 'mallory', status: 401 }]);
  t.match(of(alice), [{ action: 'pull_manifest', subject: 'alice', method: 'basic', status: 200 }]);
  t.equal(all.length, 5);
});

t.test('no secret reaches an audit line (nor the application log)', async (t) => {
  const { img, mirror, file } = await world(t, { access: { ...allowAll, ...standIn } });
  const canaries = ['CANARY-PASSWORD-5d1f', 'CANARY-BEARER-77ac', 'CANARY-QUERY-0b3e', 'CANARY-COLONLESS-91aa'];
  const [password, bearer, query, colonless] = canaries as [string, string, string, string];
  const asBasic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  const headers: Record<string, string>[] = [
    { authorization: asBasic(`alice:${password}`) },
    { authorization: `Bearer ${bearer}` },
    { authorization: asBasic(colonless) },
    { authorization: asBasic(`alice:right`), 'x-forwarded-for': password },
  ];
  const paths = ['/v2/alpine/manifests/3', `/v2/alpine/blobs/${img.layers[0]!.digest}`, `/v2/alpine/tags/list?ns=docker.io&token=${query}&password=${query}`, `/v2/?access_token=${query}`];
  for (const h of headers) for (const p of paths) await request(`${mirror.url}${p}`, { headers: { accept: ACCEPT, ...h } });
  await mirror.app.settled();
  const { all } = await linesAfterClose(mirror, file);
  t.ok(all.length >= 12, `${all.length} lines written`);
  t.ok(all.some((l) => l['action'] === 'auth_failed') && all.some((l) => l['action'] === 'pull_blob'), 'failures and pulls alike');
  const audit = readFileSync(file, 'utf8');
  const appLog = mirror.logs.join('');
  for (const canary of canaries) {
    for (const form of [canary, Buffer.from(canary).toString('base64'), Buffer.from(`alice:${canary}`).toString('base64')]) {
      t.notOk(audit.includes(form), `${form} is in no audit line`);
      t.notOk(appLog.includes(form), `${form} is in no application log line`);
    }
  }
});

t.test('X-Forwarded-For names the client only when the peer is a trusted proxy', async (t) => {
  const xff = { 'x-forwarded-for': '198.51.100.20, 203.0.113.9, 10.1.2.3' };
  const cases: [string, Partial<StartMirrorOptions>, string][] = [
    ['no trusted proxies', {}, '127.0.0.1'],
    ['another proxy is trusted, not this peer', { trustedProxies: ['192.0.2.1'] }, '127.0.0.1'],
    ['IPv4 peer and a CIDR', { trustedProxies: ['127.0.0.1', '10.0.0.0/8'] }, '203.0.113.9'],
    ['the peer only: the right-most hop is the client', { trustedProxies: ['127.0.0.0/8'] }, '10.1.2.3'],
    ['an IPv4-mapped IPv6 peer', { trustedProxies: ['127.0.0.1', '10.0.0.0/8'], listen: '[::ffff:127.0.0.1]:0' }, '203.0.113.9'],
  ];
  for (const [label, options, want] of cases) {
    const { mirror, file } = await world(t, options);
    const forwarded = await request(`${mirror.url}/v2/alpine/tags/list`, { headers: xff });
    const direct = await request(`${mirror.url}/v2/alpine/tags/list`);
    const { of } = await linesAfterClose(mirror, file);
    t.match(of(forwarded), [{ client: want }], label);
    t.match(of(direct), [{ client: '127.0.0.1' }], `${label}: without the header, the peer (IPv4 spelling)`);
  }
});

t.test('audit.path "stdout": lines on the application log stream, told apart by "log":"audit"', async (t) => {
  const { mirror } = await world(t, { auditLog: { path: 'stdout' } });
  const pulled = await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  await mirror.close();
  const parsed = mirror.logs.map((l) => JSON.parse(l) as Line);
  const audit = parsed.filter((l) => l['log'] === 'audit');
  t.match(audit, [{ action: 'pull_manifest', requestId: pulled.headers['x-request-id'], status: 200 }]);
  t.ok(parsed.some((l) => l['msg'] === 'request' && l['requestId'] === pulled.headers['x-request-id'] && l['log'] === undefined), 'the access line is an application line');
  t.notOk(audit.some((l) => 'level' in l), 'audit lines carry no log level: they do not depend on it');
});

t.test('an audit log that cannot be written never fails a pull', async (t) => {
  const { img, mirror } = await world(t, { auditLog: { path: '/dev/full' } });
  for (let i = 0; i < 3; i++) {
    const res = await request(`${mirror.url}/v2/alpine/blobs/${img.layers[0]!.digest}`);
    t.equal(res.status, 200);
    t.equal(sha256(res.body), img.layers[0]!.digest);
  }
  await until('the failure reported', () => mirror.logs.some((l) => /audit log write failed/.test(l)));
  await mirror.close();
  t.equal(mirror.logs.filter((l) => /audit log write failed/.test(l)).length, 1, 'one warning');
  t.match((await mirror.app.metrics.exposition()).body, /regmirror_audit_lines_total\{result="dropped"\} 3/);
});

t.test('an audit path that cannot be opened fails start-up, naming it', async (t) => {
  const dir = t.testdir({ 'not-a-dir': '' });
  const reg = await startTestRegistry(t);
  const mirror = buildMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, auditLog: { path: path.join(dir, 'not-a-dir', 'audit.log') } });
  await t.rejects(mirror.start(), /not-a-dir/);
});

t.test('AppOptions.audit overrides the configured log', async (t) => {
  const events: unknown[] = [];
  const { mirror, file } = await world(t, { audit: { record: (e) => void events.push(e) } });
  await request(`${mirror.url}/v2/alpine/tags/list`);
  await mirror.close();
  t.equal(events.length, 1);
  t.notOk(existsSync(file), 'no file written');
});
