import t from 'tap';
import { buildImage, buildIndex, buildLayer } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { errorCode, request } from '../fixtures/http.js';
import { cosignKey, cosignSign } from '../fixtures/cosign.js';
import { scrape } from '../fixtures/prometheus.js';
import type { TeardownHost } from '../fixtures/teardown.js';

const ACCEPT = ['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json'].join(', ');
const image = (text: string) => buildImage({ layers: [buildLayer({ 'app.txt': text })], format: 'oci' });
const subjectOf = (img: { manifestDigest: string; manifest: Buffer }) => ({ digest: img.manifestDigest, size: img.manifest.length });

async function world(t: TeardownHost & { testdir(): string }, policy: (keyFile: string) => unknown[], registry: { referrers?: boolean } = {}) {
  const reg = await startTestRegistry(t, registry);
  const dir = t.testdir();
  const key = cosignKey(dir);
  const other = cosignKey(dir, 'other');
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, sections: { policy: policy(key.publicFile) } });
  const get = (path: string) => request(`${mirror.url}${path}`, { headers: { accept: ACCEPT } });
  return { reg, key, other, mirror, get };
}

const signedOnly = (keyFile: string) => [{ name: 'signed-team', repositories: ['docker.io/team/**'], requireSignature: { keys: [keyFile] } }];

t.test('requireSignature: a signed image is served; unsigned, wrongly signed, replayed or forged ones get 403 DENIED, blobs too', async (t) => {
  const { reg, key, other, get } = await world(t, signedOnly);
  const signed = image('signed');
  reg.pushImage('team/app', 'signed', signed);
  cosignSign(reg, 'team/app', subjectOf(signed), key);
  const cases = [
    ['unsigned', () => undefined],
    ['signed with a key the rule does not name', (img: typeof signed) => cosignSign(reg, 'team/app', subjectOf(img), other)],
    ['a valid signature of another image replayed onto it', (img: typeof signed) => cosignSign(reg, 'team/app', subjectOf(img), key, { claims: signed.manifestDigest })],
    ['a forged signature', (img: typeof signed) => cosignSign(reg, 'team/app', subjectOf(img), key, { signature: Buffer.alloc(70, 1) })],
  ] as const;

  const ok = await get('/v2/team/app/manifests/signed');
  t.equal(ok.status, 200, 'signed: served');
  t.equal(ok.headers['docker-content-digest'], signed.manifestDigest);
  t.equal((await get(`/v2/team/app/blobs/${signed.layers[0]!.digest}`)).status, 200, 'and its layers');

  for (const [i, [label, sign]] of cases.entries()) {
    const img = image(`bad ${i}`);
    reg.pushImage('team/app', `bad${i}`, img);
    sign(img);
    const res = await get(`/v2/team/app/manifests/bad${i}`);
    t.equal(res.status, 403, `${label}: 403`);
    t.equal(errorCode(res), 'DENIED');
    t.match(res.body.toString(), /refused by policy rule signed-team: no signature of sha256:[0-9a-f]{64} verifies/, 'the message names the rule, for docker pull and kubelet to show');
    t.equal((await get(`/v2/team/app/manifests/${img.manifestDigest}`)).status, 403, `${label}: by digest too`);
    const blob = await get(`/v2/team/app/blobs/${img.layers[0]!.digest}`);
    t.equal(blob.status, 403, `${label}: its layer is not served for the repository either`);
    t.equal(errorCode(blob), 'DENIED');
  }
});

t.test('signature artifacts pass without a signature of their own; a signature found as a referrer counts', async (t) => {
  const { reg, key, get } = await world(t, signedOnly, { referrers: true });
  const img = image('by referrer');
  reg.pushImage('team/app', '1', img);
  const sig = cosignSign(reg, 'team/app', subjectOf(img), key, { as: 'referrer' });
  t.equal((await get('/v2/team/app/manifests/1')).status, 200, 'signed through the referrers API only');
  const legacy = image('legacy');
  reg.pushImage('team/app', '2', legacy);
  const tagged = cosignSign(reg, 'team/app', subjectOf(legacy), key);
  const tag = `${legacy.manifestDigest.replace(':', '-')}.sig`;
  t.equal((await get(`/v2/team/app/manifests/${tag}`)).status, 200, 'the .sig tag itself is served');
  t.equal((await get(`/v2/team/app/blobs/${tagged.payload}`)).status, 200, 'and its payload');
  t.equal((await get(`/v2/team/app/manifests/${sig.manifest}`)).status, 200, 'a referrer signature by digest');
  t.equal((await get(`/v2/team/app/referrers/${img.manifestDigest}`)).status, 200, 'the referrers list');
});

t.test('a signed index passes its platform manifests; an unsigned one refuses them', async (t) => {
  const { reg, key, get } = await world(t, signedOnly);
  const amd = buildImage({ layers: [buildLayer({ a: 'amd64' })], format: 'oci', architecture: 'amd64', os: 'linux' });
  const arm = buildImage({ layers: [buildLayer({ a: 'arm64' })], format: 'oci', architecture: 'arm64', os: 'linux' });
  const index = buildIndex([amd, arm]);
  reg.pushIndex('team/multi', 'signed', index);
  const indexDigest = reg.putManifest('team/multi', undefined, index.manifest, index.mediaType);
  cosignSign(reg, 'team/multi', { digest: indexDigest, size: index.manifest.length }, key);
  t.equal((await get('/v2/team/multi/manifests/signed')).status, 200, 'the signed index');
  t.equal((await get(`/v2/team/multi/manifests/${amd.manifestDigest}`)).status, 200, 'its platform manifest, as kubelet asks next');
  t.equal((await get(`/v2/team/multi/blobs/${amd.layers[0]!.digest}`)).status, 200, 'and that platform\'s layer');

  const x = buildImage({ layers: [buildLayer({ a: 'x' })], format: 'oci', architecture: 'amd64', os: 'linux' });
  const unsigned = buildIndex([x]);
  reg.pushIndex('team/multi', 'unsigned', unsigned);
  t.equal((await get('/v2/team/multi/manifests/unsigned')).status, 403, 'the unsigned index');
  t.equal((await get(`/v2/team/multi/manifests/${x.manifestDigest}`)).status, 403, 'and its platform manifest');
});

t.test('deny: digests and tag patterns are never served; other repositories are untouched', async (t) => {
  const bad = image('vulnerable');
  const { reg, get, mirror } = await world(t, () => [{ name: 'cve-2026-1', repositories: ['docker.io/library/*'], deny: [bad.manifestDigest, '1.2.*'] }]);
  reg.pushImage('library/nginx', 'latest', bad);
  reg.pushImage('library/nginx', '1.2.7', image('old'));
  reg.pushImage('library/nginx', '1.3.0', image('new'));
  reg.pushImage('team/app', '1', bad);
  for (const path of ['/v2/library/nginx/manifests/latest', `/v2/library/nginx/manifests/${bad.manifestDigest}`, '/v2/library/nginx/manifests/1.2.7']) {
    const res = await get(path);
    t.equal(res.status, 403, path);
    t.match(res.body.toString(), /refused by policy rule cve-2026-1: (digest|tag) /);
  }
  t.equal((await get(`/v2/library/nginx/blobs/${bad.layers[0]!.digest}`)).status, 403, 'the denied image\'s layer');
  t.equal((await get('/v2/library/nginx/manifests/1.3.0')).status, 200, 'a tag the patterns do not match');
  t.equal((await get('/v2/team/app/manifests/1')).status, 200, 'the same digest in a repository no rule covers');
  t.equal((await get(`/v2/team/app/blobs/${bad.layers[0]!.digest}`)).status, 200, 'and its layer there');
  const m = await scrape(mirror.url);
  t.equal(m.value('regmirror_policy_decisions_total', { outcome: 'refused' }), 3, 'refusals counted');
  t.ok((m.value('regmirror_policy_decisions_total', { outcome: 'allowed' }) ?? 0) >= 1);
  const status = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as { policy: { rules: number; decisions: Record<string, number> } };
  t.equal(status.policy.rules, 1);
  t.equal(status.policy.decisions['refused'], 3, '/api/status shows them');
});

t.test('a refused manifest is audited as denied, naming the rule', async (t) => {
  const reg = await startTestRegistry(t);
  const bad = image('audited');
  reg.pushImage('library/nginx', 'latest', bad);
  const events: { action?: string; decision?: string; status?: number; reason?: string }[] = [];
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: reg.url } },
    sections: { policy: [{ name: 'cve-x', repositories: ['docker.io/library/*'], deny: [bad.manifestDigest] }] },
    audit: { record: (e) => events.push(e) },
  });
  t.equal((await request(`${mirror.url}/v2/library/nginx/manifests/latest`, { headers: { accept: ACCEPT } })).status, 403);
  await mirror.app.settled();
  const event = events.find((e) => e.action === 'manifest');
  t.match(event, { decision: 'denied', status: 403, reason: /refused by policy rule cve-x: digest sha256:[0-9a-f]{64} is denied/ });
});

t.test('mode warn serves what enforce would refuse, and counts it', async (t) => {
  const { reg, get, mirror } = await world(t, (keyFile) => [{ repositories: ['docker.io/team/**'], requireSignature: { keys: [keyFile] }, mode: 'warn' }]);
  reg.pushImage('team/app', '1', image('unsigned'));
  t.equal((await get('/v2/team/app/manifests/1')).status, 200);
  const m = await scrape(mirror.url);
  t.equal(m.value('regmirror_policy_decisions_total', { outcome: 'warned' }), 1);
  t.equal(m.value('regmirror_policy_decisions_total', { outcome: 'refused' }), 0);
});

t.test('policy config: every mistake named by its key; keys checked at start', async (t) => {
  const { parseConfig, ConfigError } = await import('../../src/config/index.js');
  const base = { storage: { path: '/tmp/x' }, upstreams: { 'docker.io': { url: 'https://r.test' } } };
  const bad: [unknown, RegExp][] = [
    [{ repositories: ['docker.io/a'] }, /policy\[0\].*needs "deny" or "requireSignature"/],
    [{ repositories: [], deny: ['x'] }, /policy\[0\]\.repositories.*at least one/],
    [{ repositories: ['nowhere.test/a'], deny: ['x'] }, /policy\[0\]\.repositories\[0\].*configured upstream/],
    [{ repositories: ['docker.io/a'], deny: ['sha256:short'] }, /policy\[0\]\.deny\[0\]/],
    [{ repositories: ['docker.io/a'], deny: ['a b'] }, /policy\[0\]\.deny\[0\]/],
    [{ repositories: ['docker.io/a'], requireSignature: { keys: [] } }, /policy\[0\]\.requireSignature\.keys/],
    [{ repositories: ['docker.io/a'], deny: ['x'], mode: 'audit' }, /policy\[0\]\.mode.*"enforce" or "warn"/],
    [{ repositories: ['docker.io/a'], deny: ['x'], extra: 1 }, /policy\[0\]\.extra.*unknown key/],
  ];
  for (const [rule, message] of bad) {
    t.throws(() => parseConfig({ ...base, policy: [rule] }, { baseDir: '/tmp', env: {} }), { name: 'ConfigError', message }, JSON.stringify(rule));
  }
  t.throws(() => parseConfig({ ...base, policy: {} }, { baseDir: '/tmp', env: {} }), ConfigError);

  const reg = await startTestRegistry(t);
  const dir = t.testdir({ 'not-a-key.pub': 'hello' });
  for (const [file, message] of [
    [`${dir}/missing.pub`, /policy\[0\]\.requireSignature\.keys\[0\].*cannot read .*missing\.pub: ENOENT/],
    [`${dir}/not-a-key.pub`, /policy\[0\]\.requireSignature\.keys\[0\].*not a PEM public key/],
  ] as const) {
    await t.rejects(startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, sections: { policy: [{ repositories: ['docker.io/**'], requireSignature: { keys: [file] } }] } }), { name: 'ConfigError', message });
  }
});
