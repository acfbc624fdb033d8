import t from 'tap';
import { FailureThrottle, InvalidCredentials, throttleKey, type FailureThrottleOptions } from '../../src/auth/index.js';

// The failure throttle with its clock and its sleep in the test's hands: which delays are asked
// for, who waits for whom, never how long anything took.

interface Sleep {
  readonly ms: number;
  resolve(): void;
}

function harness(options: Partial<FailureThrottleOptions> = {}, autoResolve = true) {
  let clock = 1_000_000;
  const sleeps: Sleep[] = [];
  const capped: string[] = [];
  const throttle = new FailureThrottle({
    now: () => clock,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        sleeps.push({ ms, resolve });
        if (autoResolve) resolve();
      }),
    onCapReached: (address) => capped.push(address),
    ...options,
  });
  const wrong = () => Promise.reject(new InvalidCredentials('wrong'));
  const fail = (address: string | undefined) => throttle.run(address, wrong).catch((err: unknown) => err);
  return { throttle, sleeps, capped, fail, advance: (ms: number) => void (clock += ms) };
}

/** Lets every settled promise's continuations run. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

t.test('each failure from an address doubles its delay, from 250 ms up to 10 s', async (t) => {
  const h = harness();
  t.equal(h.throttle.penaltyOf('192.0.2.1'), 0);
  for (let i = 0; i < 9; i++) t.ok((await h.fail('192.0.2.1')) instanceof InvalidCredentials, 'the failure is rethrown after its delay');
  t.same(
    h.sleeps.map((s) => s.ms),
    [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000],
  );
  t.equal(h.throttle.penaltyOf('192.0.2.1'), 10_000);
  t.same(h.capped, ['192.0.2.1'], 'reaching the cap is told once');
});

t.test('success costs nothing and forgets nothing; a quiet period does', async (t) => {
  const h = harness();
  await h.fail('192.0.2.1');
  await h.fail('192.0.2.1');
  t.equal(await h.throttle.run('192.0.2.1', () => Promise.resolve('ok')), 'ok');
  t.equal(h.sleeps.length, 2, 'no delay for a success');
  t.equal(h.throttle.penaltyOf('192.0.2.1'), 1000, 'a success does not wipe the slate: guessing between own logins stays slow');
  h.advance(59_999);
  t.equal(h.throttle.penaltyOf('192.0.2.1'), 1000);
  h.advance(1);
  t.equal(h.throttle.penaltyOf('192.0.2.1'), 0, 'after 60 s without a failure the address starts over');
  t.equal(h.throttle.tracked, 0);
  await h.fail('192.0.2.1');
  t.equal(h.sleeps.at(-1)?.ms, 250);
});

t.test('other errors pass through unpunished', async (t) => {
  const h = harness();
  const err = await h.throttle.run('192.0.2.1', () => Promise.reject(new Error('disk'))).catch((e: unknown) => e);
  t.match(err, { message: 'disk' });
  t.equal(h.sleeps.length, 0);
  t.equal(h.throttle.tracked, 0);
});

t.test('a burst from one address is checked one attempt at a time; other addresses never wait', async (t) => {
  const h = harness({}, false);
  const first = h.fail('192.0.2.1');
  await flush();
  t.equal(h.sleeps.length, 1, 'the first failure waits out its 250 ms');
  let checked = 0;
  const burst = Array.from({ length: 5 }, () =>
    h.throttle.run('192.0.2.1', () => {
      checked++;
      return Promise.reject(new InvalidCredentials('wrong'));
    }),
  );
  for (const p of burst) p.catch(() => {});
  await flush();
  t.equal(checked, 0, 'nothing of the burst is checked while the penalty runs');

  // Another client, wrong or right, is answered now.
  t.equal(await h.throttle.run('198.51.100.7', () => Promise.resolve('in')), 'in');
  const other = h.fail('198.51.100.7');
  await flush();
  t.equal(h.sleeps.at(-1)?.ms, 250, "another address's first failure: its own first delay");
  h.sleeps.at(-1)?.resolve();
  t.ok((await other) instanceof InvalidCredentials);

  h.sleeps[0]?.resolve();
  await first;
  await flush();
  t.equal(checked, 1, 'then one attempt of the burst');
  t.equal(h.sleeps.at(-1)?.ms, 500);
  for (let i = 2; i <= 5; i++) {
    h.sleeps.at(-1)?.resolve();
    await flush();
    t.equal(checked, i, `attempt ${i} after the delay before it`);
  }
  t.same(
    h.sleeps.filter((s) => s.ms !== 250).map((s) => s.ms),
    [500, 1000, 2000, 4000, 8000],
  );
  h.sleeps.at(-1)?.resolve();
  const results = await Promise.allSettled(burst);
  t.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof InvalidCredentials));
});

t.test('attempts that started before the first failure still make later ones wait for its delay', async (t) => {
  const h = harness({}, false);
  let release!: () => void;
  const slow = h.throttle.run('192.0.2.1', () => new Promise<never>((_, reject) => (release = () => reject(new InvalidCredentials('late')))));
  slow.catch(() => {});
  await flush();
  const quick = h.fail('192.0.2.1');
  await flush();
  release();
  await flush();
  t.same(
    h.sleeps.map((s) => s.ms),
    [250, 500],
    'both untracked failures count',
  );
  let checked = false;
  const next = h.throttle.run('192.0.2.1', () => {
    checked = true;
    return Promise.resolve('ok');
  });
  h.sleeps[0]?.resolve();
  await flush();
  t.notOk(checked, 'still waiting for the second penalty');
  h.sleeps[1]?.resolve();
  t.equal(await next, 'ok');
  t.ok((await quick) instanceof InvalidCredentials);
});

t.test('too many attempts queued from one address are refused unchecked', async (t) => {
  const h = harness({ maxWaiting: 3 }, false);
  void h.fail('192.0.2.1');
  await flush();
  let checked = 0;
  const attempt = () => {
    checked++;
    return Promise.resolve('ok');
  };
  const queued = [1, 2, 3].map(() => h.throttle.run('192.0.2.1', attempt));
  const refused = await h.throttle.run('192.0.2.1', attempt).catch((e: unknown) => e);
  t.ok(refused instanceof InvalidCredentials);
  t.match((refused as Error).message, /too many authentication attempts/);
  t.equal(h.sleeps.length, 1, 'refusing costs no timer');
  h.sleeps[0]?.resolve();
  t.same(await Promise.all(queued), ['ok', 'ok', 'ok']);
  t.equal(checked, 3);
});

t.test('memory is bounded: past maxAddresses the address that failed longest ago is forgotten', async (t) => {
  const h = harness({ maxAddresses: 100 });
  for (let i = 0; i < 1000; i++) await h.fail(`10.0.${i >> 8}.${i & 255}`);
  t.equal(h.throttle.tracked, 100);
  t.equal(h.throttle.penaltyOf('10.0.0.0'), 0, 'the first is forgotten');
  t.equal(h.throttle.penaltyOf('10.0.3.231'), 500, 'the last is remembered');
  await h.fail('10.0.3.132');
  t.equal(h.throttle.penaltyOf('10.0.3.132'), 1000, 'a failure renews an address');
  for (let i = 0; i < 99; i++) await h.fail(`10.1.0.${i}`);
  t.equal(h.throttle.penaltyOf('10.0.3.132'), 1000, 'so it outlives the ones that failed before it');
  t.equal(h.throttle.penaltyOf('10.0.3.133'), 0);
});

t.test('addresses: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64', async (t) => {
  t.equal(throttleKey('192.0.2.1'), '192.0.2.1');
  t.equal(throttleKey('::ffff:192.0.2.1'), '192.0.2.1');
  t.equal(throttleKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(throttleKey('2001:0db8:0001:0002:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  t.equal(throttleKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(throttleKey('::1'), '0:0:0:0::/64');
  t.equal(throttleKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(throttleKey(undefined), 'unknown');
  t.equal(throttleKey(''), 'unknown');
  t.equal(throttleKey('not-an-address'), 'not-an-address');
  const h = harness();
  await h.fail('2001:db8:1:2::1');
  t.equal(h.throttle.penaltyOf('2001:db8:1:2:ffff::9'), 500, 'the next address of the same /64 pays on');
  t.equal(h.throttle.penaltyOf('2001:db8:1:3::1'), 0);
});

t.test('the real sleep is a timer: the event loop runs on while a failure waits', async (t) => {
  const throttle = new FailureThrottle({ baseMs: 30 });
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  const err = await throttle.run('192.0.2.1', () => Promise.reject(new InvalidCredentials('x'))).catch((e: unknown) => e);
  clearInterval(ticker);
  t.ok(err instanceof InvalidCredentials);
  t.ok(ticks > 0, 'timers fired during the delay');
});
