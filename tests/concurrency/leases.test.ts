import t from 'tap';
import { createClient } from '@keyv/redis';
import { MemoryLeases, whileHeld } from '../../src/concurrency/index.js';
import { RedisLeases } from '../../src/storage/index.js';
import { leasesContract } from '../fixtures/leases-contract.js';
import { redisTools, sharedRedisUrl, uniqueNamespace } from '../fixtures/redis.js';
import { until } from '../fixtures/poll.js';

// One contract for both kinds: one process's map (embedded metadata) and a real redis-server.

t.test('in memory', async (t) => {
  leasesContract(t, async () => {
    const leases = new MemoryLeases();
    return { a: leases, b: leases };
  });
});

if (redisTools.skip && redisTools.required) t.fail(`leases on redis: ${redisTools.skip}`);

t.test('on redis', { skip: redisTools.skip }, async (t) => {
  const url = await sharedRedisUrl(t);
  const connect = async () => {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  leasesContract(t, async (t) => {
    // Two replicas: a connection each, on one namespace.
    const namespace = uniqueNamespace('leases');
    const [one, two] = [await connect(), await connect()];
    t.teardown(async () => {
      for (const c of [one, two]) if (c.isOpen) c.destroy();
    });
    return { a: new RedisLeases(one, namespace), b: new RedisLeases(two, namespace), crash: async () => one.destroy() };
  });
});

t.test('whileHeld renews a lease while the work runs and releases it at the end', async (t) => {
  const leases = new MemoryLeases();
  const lease = await leases.tryAcquire('sync:job', 300);
  t.ok(lease);
  let heldMidway = false;
  const result = await whileHeld(lease!, 300, async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    heldMidway = (await leases.tryAcquire('sync:job', 300)) === undefined;
    return 'done';
  });
  t.equal(result, 'done');
  t.ok(heldMidway, 'still held after three times its ttl');
  t.ok(await leases.tryAcquire('sync:job', 300), 'released at the end');
});

t.test('whileHeld tells a lost lease and still releases after a failure', async (t) => {
  const leases = new MemoryLeases();
  const lease = await leases.tryAcquire('sync:job', 60_000);
  await lease!.release();
  const lost: unknown[] = [];
  await t.rejects(
    whileHeld(lease!, 60, async () => {
      await until('a lost renewal', () => lost.length, (n) => n > 0);
      throw new Error('the run failed');
    }, (error) => lost.push(error)),
    /the run failed/,
  );
  t.match(String(lost[0]), /expired before it was renewed/);
});
