import t from 'tap';
import { contentRange, parseRange, unsatisfiedContentRange, type RangeRequest } from '../../src/oci/index.js';

const full: RangeRequest = { kind: 'full' };
const none: RangeRequest = { kind: 'unsatisfiable' };
const part = (start: number, end: number): RangeRequest => ({ kind: 'partial', start, end });

const cases: [string, string | undefined, number, RangeRequest][] = [
  // absent / ignored
  ['absent', undefined, 100, full],
  ['empty', '', 100, full],
  ['other unit', 'items=0-5', 100, full],
  ['no equals', 'bytes 0-5', 100, full],
  ['garbage', 'bytes=abc', 100, full],
  ['only dash', 'bytes=-', 100, full],
  ['negative start', 'bytes=--5', 100, full],
  ['decimal', 'bytes=1.5-2', 100, full],
  ['space inside', 'bytes=1 -2', 100, full],
  ['last before first', 'bytes=10-5', 100, full],
  ['multi-range', 'bytes=0-1,5-9', 100, full],
  ['multi-range with spaces', 'bytes=0-1, 5-9', 100, full],
  ['trailing comma', 'bytes=0-1,', 100, full],
  ['multi-range size 0', 'bytes=0-1,2-3', 0, full],
  ['garbage size 0', 'bytes=x', 0, full],
  // open-ended (resume)
  ['from 0', 'bytes=0-', 100, part(0, 99)],
  ['resume', 'bytes=40-', 100, part(40, 99)],
  ['last byte only', 'bytes=99-', 100, part(99, 99)],
  ['at size', 'bytes=100-', 100, none],
  ['beyond size', 'bytes=1000-', 100, none],
  // closed
  ['closed', 'bytes=0-0', 100, part(0, 0)],
  ['closed middle', 'bytes=10-19', 100, part(10, 19)],
  ['end at last byte', 'bytes=10-99', 100, part(10, 99)],
  ['end beyond size clamped', 'bytes=10-5000', 100, part(10, 99)],
  ['huge end clamped', `bytes=0-${'9'.repeat(40)}`, 100, part(0, 99)],
  ['huge start', `bytes=${'9'.repeat(40)}-`, 100, none],
  ['start at size, closed', 'bytes=100-200', 100, none],
  ['leading zeros', 'bytes=007-010', 100, part(7, 10)],
  // suffix
  ['suffix', 'bytes=-10', 100, part(90, 99)],
  ['suffix whole', 'bytes=-100', 100, part(0, 99)],
  ['suffix longer than size', 'bytes=-1000', 100, part(0, 99)],
  ['suffix 1', 'bytes=-1', 100, part(99, 99)],
  ['suffix 0', 'bytes=-0', 100, none],
  // size 0
  ['size 0 open', 'bytes=0-', 0, none],
  ['size 0 closed', 'bytes=0-0', 0, none],
  ['size 0 suffix', 'bytes=-5', 0, none],
  // syntax leniency that RFC 9110 allows
  ['unit case-insensitive', 'BYTES=5-', 100, part(5, 99)],
  ['surrounding whitespace', '  bytes= 5-6 ', 100, part(5, 6)],
];

t.test('parseRange', async (t) => {
  for (const [label, header, size, want] of cases) t.same(parseRange(header, size), want, label);
});

t.test('Content-Range values', async (t) => {
  t.equal(contentRange(0, 99, 100), 'bytes 0-99/100');
  t.equal(contentRange(5, 5, 6), 'bytes 5-5/6');
  t.equal(unsatisfiedContentRange(100), 'bytes */100');
  t.equal(unsatisfiedContentRange(0), 'bytes */0');
});
