import t from 'tap';
import { createHash } from 'node:crypto';
import { ownerOf } from '../../src/cluster/index.js';

const digests = Array.from({ length: 3000 }, (_, i) => `sha256:${createHash('sha256').update(String(i)).digest('hex')}`);
const urls = (n: number) => Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:5000`);

t.test('every replica computes the same owner, whatever order it lists the members in', async (t) => {
  const members = urls(5);
  const reversed = [...members].reverse();
  t.ok(digests.every((d) => ownerOf(d, members) === ownerOf(d, reversed)));
  t.equal(ownerOf(digests[0]!, []), undefined, 'no members, no owner');
});

t.test('the digests spread evenly', async (t) => {
  const members = urls(4);
  const share = new Map(members.map((m) => [m, 0]));
  for (const d of digests) share.set(ownerOf(d, members)!, share.get(ownerOf(d, members)!)! + 1);
  // 750 expected each; 6 standard deviations is about ±140.
  for (const [m, n] of share) t.ok(n > 600 && n < 900, `${m} owns ${n} of 3000`);
});

t.test('a membership change moves only the digests it must', async (t) => {
  for (const n of [2, 3, 5, 8]) {
    const before = urls(n);
    const added = urls(n + 1);
    const joiner = added[n]!;
    const moved = digests.filter((d) => ownerOf(d, before) !== ownerOf(d, added));
    t.ok(moved.every((d) => ownerOf(d, added) === joiner), `${n}→${n + 1}: every moved digest moved to the new member`);
    const expected = digests.length / (n + 1);
    t.ok(Math.abs(moved.length - expected) < expected * 0.25, `${n}→${n + 1}: ${moved.length} moved, about 1/${n + 1} (${Math.round(expected)})`);

    const leaver = before[Math.floor(n / 2)]!;
    const after = before.filter((m) => m !== leaver);
    const movedOnLeave = digests.filter((d) => ownerOf(d, before) !== ownerOf(d, after));
    t.ok(movedOnLeave.every((d) => ownerOf(d, before) === leaver), `${n}→${n - 1}: only the leaver's digests moved`);
    t.equal(movedOnLeave.length, digests.filter((d) => ownerOf(d, before) === leaver).length, `${n}→${n - 1}: all of them`);
  }
});
