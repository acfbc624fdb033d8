import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadMallocTrim } from '../../src/cli/malloc-trim.js';

const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
const glibc = report.header?.glibcVersionRuntime;

t.test('malloc_trim gives free pages below live allocations back to the system', { skip: glibc === undefined ? 'not glibc: nothing to trim with' : false }, async (t) => {
  const trim = await loadMallocTrim();
  if (trim === undefined) return t.fail('glibc is here, so malloc_trim must load');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // 64 KiB buffers come from glibc's main heap. Keep every 32nd alive, the last one included, so
  // the free space between them is below live allocations, where glibc's own trimming never reaches.
  const kept: Buffer[] = [];
  (() => {
    const all: Buffer[] = [];
    for (let i = 0; i < 2048; i++) all.push(Buffer.allocUnsafeSlow(64 * 1024).fill(i));
    for (let i = 31; i < all.length; i += 32) kept.push(all[i]!);
  })();
  const rssMiB = () => process.memoryUsage.rss() / (1024 * 1024);
  for (let i = 0; i < 20 && process.memoryUsage().arrayBuffers > 16 * 1024 * 1024; i++) {
    gc();
    await sleep(50);
  }
  const before = rssMiB();
  const gaveBack = trim();
  const after = rssMiB();
  t.ok(gaveBack, 'malloc_trim says it gave memory back');
  t.ok(before - after >= 32, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB: the ~120 MiB of holes went back`);
  t.equal(kept.length, 64);
  t.ok(kept.every((buf, i) => buf[0] === (i * 32 + 31) % 256), 'the live buffers are untouched');
});

t.test('elsewhere it is simply not there', { skip: process.platform === 'linux' ? 'Linux: see above' : false }, async (t) => {
  t.equal(await loadMallocTrim(), undefined);
});
