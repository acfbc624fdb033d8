import t from 'tap';
import { LogLimiter } from '../../src/observability/index.js';

t.test('one line per key per window, then how many were held back', async (t) => {
  let now = 1_000_000;
  const limiter = new LogLimiter(() => now);
  t.equal(limiter.admit('a'), 0, 'the first line goes through');
  t.equal(limiter.admit('a'), undefined);
  t.equal(limiter.admit('b'), 0, 'another cause is its own line');
  now += 59_999;
  t.equal(limiter.admit('a'), undefined, 'still inside the minute');
  now += 1;
  t.equal(limiter.admit('a'), 2, 'a minute later: logged, saying two were held back');
  t.equal(limiter.admit('a'), undefined);
});

t.test('bounded: the oldest keys are forgotten first', async (t) => {
  const limiter = new LogLimiter(() => 0);
  for (let i = 0; i < 1001; i++) limiter.admit(`k${i}`);
  t.equal(limiter.admit('k0'), 0, 'k0 was dropped, so it logs again');
  t.equal(limiter.admit('k1000'), undefined, 'a recent key is still held');
});
