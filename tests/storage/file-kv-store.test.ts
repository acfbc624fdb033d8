import t from 'tap';
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { FileKvStore, StorageError, type SkippedLine } from '../../src/storage/index.js';
import { storageLayout } from '../../src/storage/layout.js';
import { FakeTimers } from '../fixtures/fake-timers.js';

function logPath(root: string): string {
  return storageLayout(root).metadataLog;
}

async function opened(root: string, options: Partial<ConstructorParameters<typeof FileKvStore>[0]> = {}): Promise<FileKvStore> {
  const store = new FileKvStore({ root, ...options });
  await store.open();
  return store;
}

t.test('set, get, has, delete and the many-variants', async (t) => {
  const store = await opened(t.testdir());
  t.teardown(() => store.close());
  t.equal(await store.get('a'), undefined);
  t.equal(await store.set('a', '{"value":1}'), true);
  await store.set('b', 'two');
  t.equal(await store.get('a'), '{"value":1}');
  t.same(await store.getMany(['a', 'x', 'b']), ['{"value":1}', undefined, 'two']);
  t.equal(await store.has('a'), true);
  t.same(await store.hasMany(['a', 'x']), [true, false]);
  t.equal(await store.delete('a'), true);
  t.equal(await store.delete('a'), false);
  t.equal(await store.get('a'), undefined);
  await store.set('c', 'three');
  t.equal(await store.deleteMany(['b', 'c']), true);
  await store.set('d', 'four');
  t.equal(await store.deleteMany(['d', 'nope']), false, 'false when a key was absent');
  t.equal(await store.get('d'), undefined);
  await store.set('e', undefined);
  t.equal(await store.has('e'), false, 'a set to undefined is a delete');
});

t.test('everything survives a reopen', async (t) => {
  const root = t.testdir();
  const first = await opened(root);
  await first.set('keep', 'v1');
  await first.set('change', 'old');
  await first.set('change', 'new');
  await first.set('gone', 'x');
  await first.delete('gone');
  await first.set('unicode', 'ünïcødé ✓ "quoted"\nnewline');
  await first.close();
  await first.close();

  const second = await opened(root);
  t.teardown(() => second.close());
  t.equal(await second.get('keep'), 'v1');
  t.equal(await second.get('change'), 'new');
  t.equal(await second.get('gone'), undefined);
  t.equal(await second.get('unicode'), 'ünïcødé ✓ "quoted"\nnewline');
  t.equal(second.logLines, 6);
});

t.test('a torn last line is skipped and the next append does not glue onto it', async (t) => {
  const root = t.testdir();
  const first = await opened(root);
  await first.set('a', '1');
  await first.set('b', '2');
  await first.close();
  await appendFile(logPath(root), '{"k":"c","v":"tor');

  const skipped: SkippedLine[] = [];
  const second = await opened(root, { onSkippedLine: (info) => skipped.push(info) });
  t.same(skipped, [{ line: 3, torn: true }]);
  t.equal(await second.get('a'), '1');
  t.equal(await second.get('c'), undefined);
  await second.set('d', '4');
  await second.close();

  const third = await opened(root, { onSkippedLine: (info) => skipped.push(info) });
  t.teardown(() => third.close());
  t.equal(skipped.length, 1, 'the log was repaired');
  t.same(await third.getMany(['a', 'b', 'c', 'd']), ['1', '2', undefined, '4']);
});

t.test('a last line complete but for its newline is kept', async (t) => {
  const root = t.testdir();
  const first = await opened(root);
  await first.close();
  await writeFile(logPath(root), '{"k":"a","v":"1"}\n{"k":"b","v":"2"}');
  const second = await opened(root);
  await second.set('c', '3');
  await second.close();
  const third = await opened(root);
  t.teardown(() => third.close());
  t.same(await third.getMany(['a', 'b', 'c']), ['1', '2', '3']);
});

t.test('corrupt lines in the middle are reported and skipped', async (t) => {
  const root = t.testdir();
  const first = await opened(root);
  await first.close();
  const lines = ['{"k":"a","v":"1"}', 'garbage', '[1,2]', '{"v":"no key"}', '{"k":"x"}', '{"k":"e","v":1,"e":"soon"}', '{"k":"b","v":"2"}', ''];
  await writeFile(logPath(root), lines.join('\n'));
  const skipped: SkippedLine[] = [];
  const second = await opened(root, { onSkippedLine: (info) => skipped.push(info) });
  t.teardown(() => second.close());
  t.same(
    skipped.map((s) => s.line),
    [2, 3, 4, 5, 6],
  );
  t.ok(skipped.every((s) => !s.torn));
  t.same(await second.getMany(['a', 'b']), ['1', '2']);
});

t.test('compaction keeps the data and shrinks the file', async (t) => {
  const root = t.testdir();
  const store = await opened(root, { compactMinLines: 50 });
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`key${i}`, `round ${round} value ${i}`)));
  }
  t.ok(store.logLines <= 50, `compacted down to ${store.logLines} lines`);
  const size = (await stat(logPath(root))).size;
  const uncompacted = 200 * '{"k":"key0","v":"round 10 value 0"}\n'.length;
  t.ok(size <= uncompacted / 3, `log is ${size} bytes, not the ${uncompacted} of 200 lines`);
  await store.close();

  const reopened = await opened(root);
  t.teardown(() => reopened.close());
  for (let i = 0; i < 10; i++) t.equal(await reopened.get(`key${i}`), `round 19 value ${i}`);
});

t.test('open compacts a log that grew past the threshold and drops a stale compaction file', async (t) => {
  const root = t.testdir();
  const store = await opened(root, { compactMinLines: 1_000_000 });
  for (let i = 0; i < 30; i++) await store.set('same', `v${i}`);
  await store.close();
  await writeFile(`${logPath(root)}.compact`, 'half-written compaction');
  const reopened = await opened(root, { compactMinLines: 10 });
  t.teardown(() => reopened.close());
  t.equal(reopened.logLines, 1);
  t.equal(await reopened.get('same'), 'v29');
  t.equal((await readFile(logPath(root), 'utf8')).split('\n').length, 2);
  await t.rejects(stat(`${logPath(root)}.compact`), { code: 'ENOENT' });
});

t.test('clear removes only the namespace when one is set', async (t) => {
  const root = t.testdir();
  const store = await opened(root);
  await store.set('ns:a', '1');
  await store.set('other:b', '2');
  store.namespace = 'ns';
  await store.clear();
  t.equal(await store.get('ns:a'), undefined);
  t.equal(await store.get('other:b'), '2');
  store.namespace = undefined;
  await store.clear();
  t.equal(await store.get('other:b'), undefined);
  await store.close();
  const reopened = await opened(root);
  t.teardown(() => reopened.close());
  t.same(await reopened.getMany(['ns:a', 'other:b']), [undefined, undefined]);
});

t.test('iterator walks the live entries of a namespace', async (t) => {
  const store = await opened(t.testdir());
  t.teardown(() => store.close());
  await store.set('ns:a', '1');
  await store.set('ns:b', '2');
  await store.set('zz:c', '3');
  const seen: unknown[] = [];
  for await (const entry of store.iterator('ns')) seen.push(entry);
  t.same(seen, [
    ['ns:a', '1'],
    ['ns:b', '2'],
  ]);
  const all: unknown[] = [];
  for await (const entry of store.iterator()) all.push(entry);
  t.equal(all.length, 3);
});

t.test('entries with a ttl expire, also across a reopen', async (t) => {
  const root = t.testdir();
  const clock = new FakeTimers();
  const now = () => clock.now();
  const store = await opened(root, { now });
  await store.set('short', 'x', 1);
  await store.set('long', 'y', 3_600_000);
  t.equal(await store.get('short'), 'x', 'alive until its ttl has passed');
  clock.advance(1);
  t.equal(await store.get('short'), undefined);
  t.equal(await store.get('long'), 'y');
  await store.set('plain', 'z', 0);
  await store.close();
  const reopened = await opened(root, { now });
  t.teardown(() => reopened.close());
  t.same(await reopened.getMany(['short', 'long', 'plain']), [undefined, 'y', 'z']);
});

t.test('use before open or after close is an error, close is idempotent', async (t) => {
  const root = t.testdir();
  const store = new FileKvStore({ root });
  await store.close();
  await t.rejects(store.get('a'), StorageError);
  const other = await opened(root);
  await other.disconnect();
  await t.rejects(other.set('a', 'b'), StorageError);
  await other.close();
});

t.test('open fails with a StorageError when the directory is unusable', async (t) => {
  const root = t.testdir({ v1: 'a file where the directory should be' });
  const store = new FileKvStore({ root });
  await t.rejects(store.open(), StorageError);
});

t.test('100,000 entries write and reload', async (t) => {
  const root = t.testdir();
  const store = await opened(root);
  const record = (i: number) => JSON.stringify({ value: { size: i, upstreams: ['docker.io'] } });
  const batch = 5_000;
  for (let start = 0; start < 100_000; start += batch) {
    await Promise.all(Array.from({ length: batch }, (_, j) => store.set(`regmirror:blob:sha256:${(start + j).toString(16).padStart(64, '0')}`, record(start + j))));
  }
  await store.close();
  const reopened = await opened(root);
  t.teardown(() => reopened.close());
  t.equal(reopened.logLines, 100_000);
  for (const i of [0, 1, 54_321, 99_999]) {
    t.equal(await reopened.get(`regmirror:blob:sha256:${i.toString(16).padStart(64, '0')}`), record(i));
  }
});

t.test('compaction of large values writes in chunks and keeps them', async (t) => {
  const root = t.testdir();
  const store = await opened(root, { compactMinLines: 8 });
  const big = (i: number, round: number) => `${round}:${String(i).repeat(200_000 / String(i).length)}`;
  for (let round = 0; round < 3; round++) for (let i = 0; i < 8; i++) await store.set(`big${i}`, big(i, round));
  t.ok(store.logLines <= 16, `compacted to ${store.logLines} lines`);
  await store.close();
  const reopened = await opened(root);
  t.teardown(() => reopened.close());
  for (let i = 0; i < 8; i++) t.equal(await reopened.get(`big${i}`), big(i, 2));
});

t.test('a failed compaction is reported and loses nothing', async (t) => {
  const root = t.testdir();
  const store = await opened(root, { compactMinLines: 5 });
  const errors: unknown[] = [];
  store.on('error', (error) => errors.push(error));
  // A directory where the compaction's temp file goes makes the rewrite fail.
  await mkdir(`${logPath(root)}.compact`);
  for (let i = 0; i < 10; i++) await store.set('k', `v${i}`);
  t.ok(errors.length > 0);
  t.type(errors[0], StorageError);
  t.match((errors[0] as Error).message, /compacting/);
  t.equal(store.logLines, 10, 'nothing was rewritten');
  store.removeAllListeners('error');
  await store.set('k', 'unheard'); // without a listener the failure is swallowed, not thrown
  await store.close();
  await rm(`${logPath(root)}.compact`, { recursive: true });
  const reopened = await opened(root);
  t.teardown(() => reopened.close());
  t.equal(await reopened.get('k'), 'unheard');
});
