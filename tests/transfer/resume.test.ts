import t from 'tap';
import { appendFileSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REFS, startTransferWorld } from '../fixtures/transfer.js';
import { routeContext } from '../../src/app.js';
import { openLayoutWriter, parseImageRef, runExport, type ExportSource } from '../../src/transfer/index.js';
import { encodeHeader } from '../../src/transfer/tar-header.js';

/** The connected mirror, failing every blob after the first `n`. */
function failingAfter(source: ExportSource, n: number): ExportSource {
  let served = 0;
  return {
    ...source,
    async blob(ref, digest) {
      if (++served > n) throw new Error('the connection to the connected site dropped');
      return source.blob(ref, digest);
    },
  };
}

for (const kind of ['tar', 'dir'] as const) {
  t.test(`an interrupted ${kind} export continues where it stopped`, async (t) => {
    const world = await startTransferWorld(t);
    const output = path.join(world.dir, kind === 'tar' ? 'set.tar' : 'set');
    const context = routeContext(world.connected.app.config);
    const request = { items: REFS.map((r) => ({ ref: parseImageRef(r, context), platforms: [] })), platforms: [], since: undefined, version: 'test' };
    const first = await runExport(request, failingAfter(world.connected.app.transfer.source, 3), await openLayoutWriter(output));
    t.ok(first.errors.length > 0, 'images failed');
    t.ok(first.written.blobs >= 3, 'some blobs were written');
    if (kind === 'tar') {
      t.notOk(existsSync(output), 'no complete tar under the final name');
      // A run killed while writing a blob leaves a pending member at the end.
      appendFileSync(`${output}.partial`, Buffer.concat([encodeHeader(`blobs/sha256/${'a'.repeat(64)}.partial`, 5000), Buffer.alloc(700, 1)]));
    } else {
      t.notOk(existsSync(path.join(output, 'index.json')), 'no index.json: visibly unfinished');
      writeFileSync(path.join(output, 'blobs', 'sha256', `.${'a'.repeat(64)}.partial-123456`), 'half a blob');
    }
    const second = await runExport(request, world.connected.app.transfer.source, await openLayoutWriter(output));
    t.same(second.errors, []);
    t.equal(second.reused.blobs, first.written.blobs, 'what the first run wrote is not written again');
    t.equal(second.reused.blobs + second.written.blobs, second.summary.carried.blobs);
    if (kind === 'tar') t.ok(existsSync(output) && !existsSync(`${output}.partial`), 'the tar is complete');
    else t.same(readdirSync(path.join(output, 'blobs', 'sha256')).filter((n) => n.startsWith('.')), [], 'the stale temp file is gone');

    const { mirror } = await world.disconnected();
    const imported = await world.importInto(mirror, output);
    t.equal(imported.images.length, REFS.length, 'the resumed export imports whole');

    // Run once more over the complete output: nothing is written, the index is rewritten.
    const size = kind === 'tar' ? statSync(output).size : 0;
    const third = await runExport(request, world.connected.app.transfer.source, await openLayoutWriter(output));
    t.equal(third.written.blobs, 0);
    if (kind === 'tar') t.equal(statSync(output).size, size, 'the same tar, index and summary replaced in place');
  });
}
