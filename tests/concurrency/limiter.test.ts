import t from 'tap';
import { Limiter } from '../../src/concurrency/index.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => (resolve = res));
  return { promise, resolve };
}

t.test('at most `size` tasks run at once, the rest start in arrival order', async (t) => {
  const limiter = new Limiter(2);
  const gates = [deferred(), deferred(), deferred(), deferred()];
  const started: number[] = [];
  const runs = gates.map((g, i) => limiter.run(async () => (started.push(i), await g.promise, i)));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(started, [0, 1], 'two running, two waiting');
  gates[1]!.resolve();
  await runs[1];
  await new Promise((resolve) => setImmediate(resolve));
  t.same(started, [0, 1, 2], 'a freed slot goes to the first waiter');
  for (const g of gates) g.resolve();
  t.same(await Promise.all(runs), [0, 1, 2, 3]);
  t.equal(limiter.peak, 2);
});

t.test('a failing task frees its slot and passes its error on', async (t) => {
  const limiter = new Limiter(1);
  const failed = limiter.run(async () => {
    throw new Error('boom');
  });
  const next = limiter.run(async () => 'next');
  await t.rejects(failed, /boom/);
  t.equal(await next, 'next');
  t.equal(limiter.peak, 1);
});
