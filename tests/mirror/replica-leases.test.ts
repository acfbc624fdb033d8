import t, { type Test } from 'tap';
import { createClient } from '@keyv/redis';
import { RedisLeases } from '../../src/storage/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startTestRegistry, type TestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { redisTools, sharedRedisUrl, uniqueNamespace } from '../fixtures/redis.js';
import { UP } from '../fixtures/sync.js';

// Three replicas with their own storage on one Redis and one upstream: a tag is resolved upstream
// once per TTL for all of them, and a sync entry runs on one of them at a time.

if (redisTools.skip && redisTools.required) t.fail(`replica leases: ${redisTools.skip}`);

const TTL_MS = 60_000;
const TAG = '/manifests/v1';

interface World {
  readonly reg: TestRegistry;
  readonly replicas: TestMirror[];
  readonly namespace: string;
  readonly url: string;
  /** Moves every replica's clock past the tag TTL. */
  expire(): void;
}

async function world(t: Test, sync?: unknown): Promise<World> {
  const reg = await startTestRegistry(t);
  const url = await sharedRedisUrl(t);
  const namespace = uniqueNamespace('replicas');
  let skew = 0;
  const now = () => Date.now() + skew;
  const replicas: TestMirror[] = [];
  for (let i = 0; i < 3; i++) {
    replicas.push(await startMirror(t, { upstreams: { [UP]: { url: reg.url } }, metadata: { url, namespace }, manifestTTL: '1m', now, ...(sync === undefined ? {} : { sync }) }));
  }
  return { reg, replicas, namespace, url, expire: () => void (skew += 2 * TTL_MS) };
}

/** `perReplica` concurrent GETs of the tag through each replica; every body must be the image's manifest. */
async function pullEverywhere(t: Test, w: World, digest: string, mediaType: string, perReplica = 4): Promise<void> {
  const pulls = w.replicas.flatMap((m) => Array.from({ length: perReplica }, () => request(`${m.url}/v2/team/app/manifests/v1`, { headers: { accept: mediaType } })));
  const answers = await Promise.all(pulls);
  t.same(answers.map((a) => a.status), answers.map(() => 200), 'every pull answered 200');
  t.ok(answers.every((a) => sha256(a.body) === digest), 'every pull got the manifest');
}

t.test('a tag pulled through three replicas: one upstream request for it when cold, one HEAD after the TTL', { skip: redisTools.skip }, async (t) => {
  const w = await world(t);
  const image = quickImage('replica-tag');
  w.reg.pushImage('team/app', 'v1', image);
  // The first answers late, so every replica asks while one holds the tag.
  w.reg.inject({ match: { pathIncludes: TAG }, type: 'delay', ms: 400, times: 1 });
  await pullEverywhere(t, w, image.manifestDigest, image.mediaType);
  t.equal(w.reg.count({ pathIncludes: TAG }), 1, 'one upstream request for the tag, cold, from twelve clients on three replicas');
  t.equal(w.reg.count({ method: 'GET', pathIncludes: TAG }), 1, 'and it is a GET');

  await pullEverywhere(t, w, image.manifestDigest, image.mediaType, 1);
  t.equal(w.reg.count({ pathIncludes: TAG }), 1, 'within the TTL: none more');

  w.expire();
  w.reg.resetRequests();
  w.reg.inject({ match: { method: 'HEAD', pathIncludes: TAG }, type: 'delay', ms: 400, times: 1 });
  await pullEverywhere(t, w, image.manifestDigest, image.mediaType);
  t.equal(w.reg.count({ pathIncludes: TAG }), 1, 'after the TTL: one upstream request for the tag from all three');
  t.equal(w.reg.count({ method: 'HEAD', pathIncludes: TAG }), 1, 'a HEAD');

  // The tag moved upstream: the one replica that revalidates fetches the new manifest, the others read it.
  const moved = quickImage('replica-tag-moved');
  w.reg.pushImage('team/app', 'v1', moved);
  w.expire();
  w.reg.resetRequests();
  await pullEverywhere(t, w, moved.manifestDigest, moved.mediaType);
  t.equal(w.reg.count({ method: 'HEAD', pathIncludes: TAG }), 1, 'one HEAD saw the tag move');
  t.equal(w.reg.count({ method: 'GET', pathIncludes: TAG }), 0, 'no GET by tag');
});

t.test('a replica that took the tag and died: another revalidates once the lease expires', { skip: redisTools.skip }, async (t) => {
  const w = await world(t);
  const image = quickImage('replica-dead');
  w.reg.pushImage('team/app', 'v1', image);
  await pullEverywhere(t, w, image.manifestDigest, image.mediaType, 1);
  w.expire();
  w.reg.resetRequests();

  // A replica of the same deployment takes the tag's lease, then its connection is gone without a release.
  const client = createClient({ url: w.url });
  client.on('error', () => undefined);
  await client.connect();
  const lease = await new RedisLeases(client, w.namespace).tryAcquire(`tag:${UP}/team/app:v1`, 6000);
  t.ok(lease, 'the dead replica held the tag');
  client.destroy();

  const pulls = pullEverywhere(t, w, image.manifestDigest, image.mediaType, 2);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(w.reg.count({ pathIncludes: TAG }), 0, 'while the lease lives, nobody asks upstream');
  await pulls;
  t.equal(w.reg.count({ method: 'HEAD', pathIncludes: TAG }), 1, 'after it expired, one replica revalidated for all');
  t.equal(w.reg.count({ method: 'GET', pathIncludes: TAG }), 0);
});

t.test('a sync entry started on all three replicas runs on one; the others say where it runs', { skip: redisTools.skip }, async (t) => {
  const w = await world(t, [{ upstream: UP, repository: 'team/app', tags: ['v1'] }]);
  const image = quickImage('replica-sync');
  w.reg.pushImage('team/app', 'v1', image);
  w.reg.inject({ match: { pathIncludes: TAG }, type: 'delay', ms: 500, times: 1 });
  const results = await Promise.all(w.replicas.map((m) => m.app.sync.run()));
  t.ok(results.every((r) => r.ok), 'every replica reports success');
  const ran = results.filter((r) => r.entries[0]?.images.length === 1);
  const skipped = results.filter((r) => r.entries[0]?.warnings.includes('running on another replica') === true);
  t.equal(ran.length, 1, 'one replica ran the entry');
  t.equal(skipped.length, 2, 'two skipped it');
  t.equal(w.reg.count({ method: 'GET', kind: 'blob' }), image.layers.length + 1, 'each blob fetched once (layers and config)');

  const statuses = await Promise.all(w.replicas.map(async (m) => JSON.parse((await request(`${m.url}/api/status`)).body.toString()) as { sync: { job: string; lastSkipped: { reason: string } | null; lastResult: string | null }[] }));
  const rows = statuses.map((s) => s.sync.find((e) => e.job === `${UP}/team/app`));
  t.equal(rows.filter((r) => r?.lastSkipped?.reason === 'running on another replica' && r.lastResult === null).length, 2, '/api/status of the two others shows the skipped run');
  t.equal(rows.filter((r) => r?.lastSkipped === null && r.lastResult === 'success').length, 1, 'and the one that ran shows its run');

  // Finished: the lease is free again, the next run happens wherever it is started.
  const again = await w.replicas[2]!.app.sync.run();
  t.equal(again.entries[0]?.images.length, 1, 'a later run is not blocked by the finished one');
});
