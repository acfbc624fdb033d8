import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { regmirror } from '../fixtures/regmirror-process.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { buildMirror, startMirror } from '../fixtures/mirror.js';
import { errorCode, readyzUntil, request } from '../fixtures/http.js';
import { redisTools, sharedRedisUrl, startRedis, uniqueNamespace } from '../fixtures/redis.js';

if (redisTools.skip && redisTools.required) t.fail(`redis metadata: ${redisTools.skip}`);

const MANIFEST_ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };

t.test('two replicas with their own storage share tags through one Redis', { skip: redisTools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('shared-tags');
  reg.pushImage('team/app', 'v1', image);
  const metadata = { url: await sharedRedisUrl(t), namespace: uniqueNamespace('replicas') };
  const a = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, metadata });
  const b = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, metadata });

  const pulled = await request(`${a.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT });
  t.equal(pulled.status, 200);
  for (const layer of image.layers) t.equal(sha256((await request(`${a.url}/v2/team/app/blobs/${layer.digest}`)).body), layer.digest);

  // Upstream gone: B knows the tag A resolved (the shared part), but holds no bytes of its own.
  await reg.stop();
  const head = await request(`${b.url}/v2/team/app/manifests/v1`, { method: 'HEAD', headers: MANIFEST_ACCEPT });
  t.equal(head.status, 200, 'B answers the tag from shared metadata with upstream stopped');
  t.equal(head.headers['docker-content-digest'], image.manifestDigest);
  const noBytes = await request(`${b.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT });
  t.equal(noBytes.status, 503, 'B cannot serve manifest bytes it never fetched while upstream is down');
  t.equal(errorCode(noBytes), 'UNAVAILABLE');
  const noBlob = await request(`${b.url}/v2/team/app/blobs/${image.layers[0]?.digest}`);
  t.equal(noBlob.status, 503, 'nor blobs: every replica keeps its own blob files');

  // Upstream back: B fetches content by digest only; the tag is never asked upstream again.
  await reg.restart();
  reg.resetRequests();
  const got = await request(`${b.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT });
  t.equal(got.status, 200);
  t.equal(sha256(got.body), image.manifestDigest);
  for (const layer of image.layers) t.equal(sha256((await request(`${b.url}/v2/team/app/blobs/${layer.digest}`)).body), layer.digest);
  t.equal(reg.count({ kind: 'manifest', pathIncludes: '/manifests/v1' }), 0, 'no upstream request for the tag');
  t.equal(reg.count({ kind: 'manifest', pathIncludes: image.manifestDigest }), 1, 'one manifest GET by digest');
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), image.layers.length, 'B refetches the blobs it lacks, once each');
});

t.test('Redis down at start: a clear error naming it, the password never shown', { skip: redisTools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const redis = await startRedis(t, { password: 'canary-redis-pw-7731' });
  const url = redis.url;
  await redis.stop();
  const mirror = buildMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, metadata: { url, namespace: uniqueNamespace('down') } });
  const err = await mirror.start().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.ok(err, 'start() fails');
  t.match(err?.message, `cannot reach the Redis metadata store at redis://[redacted]@127.0.0.1:${redis.port}`);
  t.match(err?.message, /ECONNREFUSED/);
  t.notMatch(err?.message, /canary-redis-pw/);
  await mirror.close();
  await mirror.close();
  t.notOk(mirror.logs.some((l) => l.includes('canary-redis-pw')), 'no log line holds the password');
});

t.test('Redis down mid-run: 503 with a reason, no crash, and recovery when it returns', { skip: redisTools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('redis-down');
  reg.pushImage('team/app', 'v1', image);
  const redis = await startRedis(t, { password: 'canary-redis-pw-9912' });
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, metadata: { url: redis.url, namespace: uniqueNamespace('midrun') } });
  const started = mirror.logs.find((l) => l.includes('regmirror listening')) ?? '';
  t.match(started, `redis://[redacted]@127.0.0.1:${redis.port}`, 'the start-up config shows the redacted URL');
  t.equal((await request(`${mirror.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT })).status, 200);

  await redis.stop();
  const down = await readyzUntil(mirror.url, { status: 503 });
  t.equal(down.status, 503);
  const body = JSON.parse(down.body.toString()) as { reasons: string[] };
  t.match(body.reasons.join('\n'), /^metadata: .*Redis at redis:\/\/\[redacted\]@127\.0\.0\.1:\d+\/? is unreachable/);
  const pull = await request(`${mirror.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT });
  t.equal(pull.status, 503, 'a pull needing metadata is refused at once, not hung');
  t.equal(errorCode(pull), 'UNAVAILABLE');
  t.equal(pull.headers['retry-after'], '10');

  await redis.restart();
  t.equal((await readyzUntil(mirror.url, { status: 200 })).status, 200, 'ready again once Redis is back');
  t.equal(mirror.logs.filter((l) => l.includes('metadata store unreachable')).length, 1, 'the loss is logged once');
  t.equal(mirror.logs.filter((l) => l.includes('metadata store reachable again')).length, 1, 'and the recovery');
  const again = await request(`${mirror.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT });
  t.equal(again.status, 200);
  t.equal(sha256(again.body), image.manifestDigest);
  for (const text of [...mirror.logs, down.body.toString(), pull.body.toString()]) {
    if (text.includes('canary-redis-pw')) t.fail(`the Redis password leaked: ${text.slice(0, 200)}`);
  }
});

t.test('cache commands on a replica: shared tags listed, only local files collected', { skip: redisTools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const image = quickImage('redis-admin');
  reg.pushImage('team/app', 'v1', image);
  const metadata = { url: await sharedRedisUrl(t), namespace: uniqueNamespace('admin') };
  const a = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, metadata });
  t.equal((await request(`${a.url}/v2/team/app/manifests/v1`, { headers: MANIFEST_ACCEPT })).status, 200);
  await a.close();
  const dir = t.testdir({});
  const configFor = (storage: string) => {
    const file = path.join(dir, `${path.basename(storage)}.json`);
    writeFileSync(file, JSON.stringify({ upstreams: { 'docker.io': { url: reg.url } }, storage: { path: storage, metadata: metadata.url, metadataNamespace: metadata.namespace } }));
    return ['--config', file];
  };
  const storageB = mkdtempSync(path.join(os.tmpdir(), 'rm-replica-b-'));
  t.teardown(() => rmSync(storageB, { recursive: true, force: true }));
  const replicaB = configFor(storageB);

  const lsB = await regmirror(['cache', 'ls', '--json', ...replicaB]);
  t.equal(lsB.code, 0, lsB.stderr);
  const listed = JSON.parse(lsB.stdout) as { tags: Array<{ repository: string; digest: string; cachedBytes: number }> };
  t.same(listed.tags.map((e) => [e.repository, e.digest, e.cachedBytes]), [['team/app', image.manifestDigest, 0]], 'B lists the tag A pulled; none of its bytes are here');

  const gcA = await regmirror(['cache', 'gc', ...configFor(a.storage)]);
  t.match(gcA.stdout, /^freed 0 blobs/, "the shared tag keeps A's files");
  const prune = await regmirror(['cache', 'prune', '--repo', 'team/app', ...replicaB]);
  t.equal(prune.code, 0, prune.stderr);
  const gcAfter = await regmirror(['cache', 'gc', ...configFor(a.storage)]);
  t.match(gcAfter.stdout, /freed 1 blobs/, 'pruned on B means gone for A too; A then collects its manifest file');
});
