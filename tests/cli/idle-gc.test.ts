import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectWhenIdle } from '../../src/cli/idle-gc.js';

/** Garbage only a collection frees: a registry tells when its buffer was collected. */
function burstOfGarbage(): { readonly collected: boolean; readonly registry: FinalizationRegistry<string> } {
  // The registry is returned too: one that is itself collected never calls back.
  const seen = { collected: false, registry: new FinalizationRegistry<string>(() => (seen.collected = true)) };
  const { registry } = seen;
  (() => {
    registry.register(Buffer.alloc(1024 * 1024), 'burst');
  })();
  return seen;
}

t.test('a burst of garbage is collected once the server goes idle, not while it is busy', async (t) => {
  let inFlight = 1;
  let released = 0;
  const stop = collectWhenIdle(() => ({ inFlight, started: 1 }), () => void released++, { checkEveryMs: 20, minGrowthBytes: 0 });
  t.teardown(stop);
  const garbage = burstOfGarbage();
  await sleep(200);
  t.notOk(garbage.collected, 'busy: no collection forced');
  inFlight = 0;
  for (let i = 0; i < 100 && !garbage.collected; i++) await sleep(20);
  t.ok(garbage.collected, 'idle after being busy: the garbage is collected');
  t.equal(released, 1, 'and what the server keeps for reuse is let go, once');
});

t.test('requests that come and go between two looks are activity: no collection until a whole quiet interval', async (t) => {
  // Short requests under load: nothing is in flight at the instant of a look, yet they keep coming.
  let started = 0;
  let released = 0;
  const stop = collectWhenIdle(() => ({ inFlight: 0, started }), () => void released++, { checkEveryMs: 20, minGrowthBytes: 0 });
  t.teardown(stop);
  const garbage = burstOfGarbage();
  for (let i = 0; i < 20; i++) {
    started++;
    await sleep(10);
  }
  t.notOk(garbage.collected, 'requests kept starting: no collection forced');
  t.equal(released, 0);
  for (let i = 0; i < 100 && !garbage.collected; i++) await sleep(20);
  t.ok(garbage.collected, 'quiet for an interval after them: collected');
  t.equal(released, 1);
});

t.test('a probe now and then on an idle server costs no collection: only growth since the last one does', async (t) => {
  let started = 0;
  let rss = 100;
  let released = 0;
  const stop = collectWhenIdle(() => ({ inFlight: 0, started }), () => void released++, { checkEveryMs: 20, minGrowthBytes: 10, rss: () => rss });
  t.teardown(stop);
  for (let probe = 0; probe < 5; probe++) {
    started++;
    rss += 1;
    await sleep(60);
  }
  t.equal(released, 0, 'five probes, 5 bytes of growth: no collection');
  started++;
  rss += 20;
  for (let i = 0; i < 50 && released === 0; i++) await sleep(20);
  t.equal(released, 1, 'a burst that grew RSS past the threshold: collected once it went quiet');
  started++;
  rss += 1;
  await sleep(100);
  t.equal(released, 1, 'measured from the collection on: the next probe costs nothing');
});

/** A collection over a server that is busy until `idle()` is called, counting releases and trims. */
function watchedCollection(): { readonly counts: { released: number; trims: number }; idle(): void; busy(): void; stop(): void } {
  let inFlight = 1;
  const counts = { released: 0, trims: 0 };
  const stop = collectWhenIdle(() => ({ inFlight, started: 1 }), () => void counts.released++, { checkEveryMs: 20, minGrowthBytes: 0, trim: () => counts.trims++ });
  return { counts, idle: () => void (inFlight = 0), busy: () => void (inFlight = 1), stop };
}

t.test('the allocator is trimmed a moment after a collection and on a few quiet checks after it, then left alone', async (t) => {
  const { counts, idle, busy, stop } = watchedCollection();
  t.teardown(stop);
  await sleep(300);
  t.equal(counts.trims, 0, 'busy: nothing trimmed');
  idle();
  for (let i = 0; i < 150 && counts.trims === 0; i++) await sleep(20);
  t.equal(counts.released, 1);
  t.ok(counts.trims >= 1, 'idle after being busy: collected, then trimmed');
  await sleep(300);
  t.equal(counts.trims, 5, 'the trim a moment after the collection, and one on each of the next four quiet checks');
  await sleep(300);
  t.equal(counts.trims, 5, 'then no more while it stays idle');
  busy();
  await sleep(200);
  t.equal(counts.trims, 5, 'busy: none');
});

t.test('activity, or stopping the collection, cancels a trim still waiting', async (t) => {
  for (const cancel of ['busy', 'stop'] as const) {
    const watched = watchedCollection();
    t.teardown(watched.stop);
    await sleep(60);
    watched.idle();
    for (let i = 0; i < 50 && watched.counts.released === 0; i++) await sleep(20);
    t.equal(watched.counts.released, 1);
    if (cancel === 'busy') watched.busy();
    else watched.stop();
    await sleep(1_300);
    t.equal(watched.counts.trims, 0, `${cancel}: nothing trimmed`);
  }
});

t.test('the idle collection compacts: old-space pages that kept a few live objects are given back', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const oldSpace = () => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!.space_size / (1024 * 1024);
  // Objects promoted to old space, then all but every 40th dropped: pages that are mostly empty.
  let all: Array<{ a: number; b: string; c: number[] }> | undefined = [];
  for (let i = 0; i < 400_000; i++) all.push({ a: i, b: `x${i}`, c: [i] });
  gc();
  gc();
  const kept = all.filter((_, i) => i % 40 === 0);
  all = undefined;
  // The idle collection is the first to see them dead: a plain one keeps every page that holds a survivor.
  const fragmented = oldSpace();
  let inFlight = 1;
  let released = 0;
  // RSS may shrink meanwhile (V8's sweeper): collect whatever it did.
  const stop = collectWhenIdle(() => ({ inFlight, started: 1 }), () => void released++, { checkEveryMs: 20, minGrowthBytes: Number.NEGATIVE_INFINITY });
  t.teardown(stop);
  await sleep(60);
  inFlight = 0;
  for (let i = 0; i < 100 && released === 0; i++) await sleep(20);
  t.equal(released, 1);
  const after = oldSpace();
  t.ok(after < fragmented / 2, `old space ${fragmented.toFixed(1)} → ${after.toFixed(1)} MiB committed, with ${kept.length} objects still live`);
});
