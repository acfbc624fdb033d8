import t from 'tap';
import { NotFoundMemory } from '../../src/mirror/not-found.js';
import { parseRepositoryName } from '../../src/oci/index.js';
import { UpstreamError } from '../../src/upstream/index.js';

// The memory's own bounds, which the HTTP-level tests (not-found-cache.test.ts) cannot see: how many
// entries it holds while names that are never asked for again keep arriving.

function world(ttlMs: number) {
  let at = Date.UTC(2026, 0, 1);
  const memory = new NotFoundMemory(() => ttlMs, () => at);
  const ref = { upstream: 'registry.local', name: parseRepositoryName('team/app') };
  const missing = (reference: string) =>
    memory.track(ref, reference, () => Promise.reject(new UpstreamError('registry.local', 'not-found', `no ${reference}`, { status: 404, ociCode: 'MANIFEST_UNKNOWN' }))).catch(() => undefined);
  return { memory, ref, missing, advance: (ms: number) => void (at += ms) };
}

t.test('expired entries are dropped as new ones arrive, so a trickle of one-off names holds only the fresh ones', async (t) => {
  const { memory, missing, advance } = world(30_000);
  for (let i = 0; i < 100; i++) {
    await missing(`one-off-${i}`);
    advance(1_000);
  }
  // 100 s of one name a second with a 30 s TTL: at most 30 fresh, plus those expired since the last
  // pass (a pass runs at most every 10 s).
  t.ok(memory.size <= 41, `${memory.size} entries held, not 100`);
  t.ok(memory.size >= 30, 'the fresh ones stay');
});

t.test('a fresh entry survives a purge, and is answered from memory', async (t) => {
  const { memory, ref, missing, advance } = world(30_000);
  await missing('kept');
  advance(20_000);
  await missing('trigger'); // a pass runs here: 'kept' has 10 s left
  advance(9_000);
  const recalled = memory.recall(ref, 'kept');
  t.equal(recalled?.details.remembered, true, 'still remembered');
  t.equal(recalled?.details.status, 404);
  t.equal(recalled?.message, 'no kept');
});

t.test('a TTL of 0 remembers nothing', async (t) => {
  const { memory, missing } = world(0);
  for (let i = 0; i < 5; i++) await missing(`n-${i}`);
  t.equal(memory.size, 0);
});
