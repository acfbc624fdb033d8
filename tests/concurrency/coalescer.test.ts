import t from 'tap';
import { Coalescer } from '../../src/concurrency/index.js';

/** A promise settled from outside, so a test decides when the work ends. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

t.test('concurrent calls for one key run the work once and share its result', async (t) => {
  const c = new Coalescer<number>();
  const work = deferred<number>();
  let calls = 0;
  const start = () => (calls++, work.promise);
  const first = c.run('k', start);
  const second = c.run('k', start);
  t.equal(calls, 1);
  t.same([first.joined, second.joined], [false, true]);
  t.equal(c.peek('k'), first.promise);
  t.equal(c.size, 1);
  work.resolve(7);
  t.same(await Promise.all([first.promise, second.promise]), [7, 7]);
  t.equal(c.size, 0, 'dropped once settled');
  t.equal(c.peek('k'), undefined);
});

t.test('separate keys run separately', async (t) => {
  const c = new Coalescer<string>();
  const a = c.run('a', async () => 'A');
  const b = c.run('b', async () => 'B');
  t.same([a.joined, b.joined], [false, false]);
  t.equal(c.pending().length, 2);
  t.same(await Promise.all([a.promise, b.promise]), ['A', 'B']);
});

t.test('a rejection reaches every waiter, then the key is free again', async (t) => {
  const c = new Coalescer<number>();
  const work = deferred<number>();
  const first = c.run('k', () => work.promise);
  const second = c.run('k', async () => 1);
  work.reject(new Error('upstream down'));
  await t.rejects(first.promise, /upstream down/);
  await t.rejects(second.promise, /upstream down/);
  t.equal(c.size, 0);
  const retry = c.run('k', async () => 2);
  t.equal(retry.joined, false, 'the failure is not remembered');
  t.equal(await retry.promise, 2);
});

t.test('a call after the work settled runs the work again', async (t) => {
  const c = new Coalescer<number>();
  let calls = 0;
  const work = async () => ++calls;
  t.equal(await c.run('k', work).promise, 1);
  t.equal(await c.run('k', work).promise, 2);
});
