import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectWhenIdle } from '../../src/cli/idle-gc.js';

t.test('a burst of garbage is collected once the server goes idle, not while it is busy', async (t) => {
  let busy = true;
  let released = 0;
  const stop = collectWhenIdle(() => !busy, () => void released++, 20);
  t.teardown(stop);
  // Garbage only a collection frees: a registry tells when its buffer was collected.
  let collected = false;
  const registry = new FinalizationRegistry(() => {
    collected = true;
  });
  (() => {
    registry.register(Buffer.alloc(1024 * 1024), 'burst');
  })();
  await sleep(200);
  t.notOk(collected, 'busy: no collection forced');
  busy = false;
  for (let i = 0; i < 100 && !collected; i++) await sleep(20);
  t.ok(collected, 'idle after being busy: the garbage is collected');
  t.equal(released, 1, 'and what the server keeps for reuse is let go, once');
});
