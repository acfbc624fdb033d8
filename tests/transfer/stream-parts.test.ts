import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { sha256 } from '../fixtures/images.js';
import { parseDigest } from '../../src/oci/index.js';
import { CliError } from '../../src/cli/cli-error.js';
import { spoolStdin } from '../../src/cli/stdin-spool.js';
import { BlobMismatchError, LayoutError, openLayoutFiles, openStreamWriter, TransferError } from '../../src/transfer/index.js';
import { readWhole } from '../../src/transfer/layout-files.js';

// The parts of `export --output -` and `import -` in this process (the child-process tests in
// tests/cli/transfer-stdio.test.ts are not counted by coverage).

const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-stream-parts-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function collector(): { out: PassThrough; bytes: () => Promise<Buffer> } {
  const out = new PassThrough();
  const done = readWhole(out);
  return { out, bytes: () => done };
}

const blob = (text: string) => ({ bytes: Buffer.from(text), digest: parseDigest(sha256(Buffer.from(text))) });

t.test('a whole stream is a tar any reader takes', async (t) => {
  const { out, bytes } = collector();
  const writer = openStreamWriter(out);
  const a = blob('first blob');
  t.notOk(writer.has(a.digest, a.bytes.length), 'a stream resumes nothing');
  await writer.putBlob(a.digest, a.bytes.length, Readable.from([a.bytes.subarray(0, 3), a.bytes.subarray(3)]));
  await writer.putFile('index.json', Buffer.from('{}'));
  await writer.finish();
  const file = path.join(dir, 'whole.tar');
  writeFileSync(file, await bytes());
  const files = await openLayoutFiles(file, 'stdin');
  t.equal(files.where, 'stdin');
  t.same(await files.read(`blobs/sha256/${a.digest.slice(7)}`, 1024), a.bytes);
  t.same(await files.read('index.json', 1024), Buffer.from('{}'));
  t.ok(await files.size('oci-layout'));
});

t.test('bytes that fail on the way cut the stream: nothing after it, no end marker', async (t) => {
  const { out, bytes } = collector();
  const writer = openStreamWriter(out);
  const good = blob('good');
  const wrong = blob('expected');
  await t.rejects(writer.putBlob(wrong.digest, 8, Readable.from([Buffer.from('tampered')])), BlobMismatchError);
  await t.rejects(writer.putBlob(good.digest, 4, Readable.from([good.bytes])), { name: 'TransferError', message: /the output stream was cut by an earlier failure \(the bytes named/ });
  await t.rejects(writer.putFile('index.json', Buffer.from('{}')), TransferError);
  await t.rejects(writer.finish(), TransferError);
  await writer.abandon();
  const file = path.join(dir, 'cut.tar');
  writeFileSync(file, await bytes());
  await t.rejects(openLayoutFiles(file, 'stdin'), new LayoutError(`stdin is a truncated tar: it ends at byte ${readFileSync(file).length} without an end-of-archive marker`));
});

t.test('a name a tar header cannot hold is refused before a byte is written', async (t) => {
  const { out, bytes } = collector();
  const writer = openStreamWriter(out);
  const long = parseDigest(`sha512:${'ab'.repeat(64)}`);
  await t.rejects(writer.putBlob(long, 1, Readable.from([Buffer.from('x')])), { name: 'TransferError', message: /only sha256 blobs fit a tar export/ });
  const ok = blob('still fine');
  await writer.putBlob(ok.digest, ok.bytes.length, Readable.from([ok.bytes]));
  await writer.finish();
  const file = path.join(dir, 'after-refusal.tar');
  writeFileSync(file, await bytes());
  t.same(await (await openLayoutFiles(file)).read(`blobs/sha256/${ok.digest.slice(7)}`, 100), ok.bytes);
});

t.test('a reader that went away fails the write, never the process', async (t) => {
  const out = new Writable({ write: (_chunk, _enc, cb) => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
  const writer = openStreamWriter(out);
  const a = blob('nobody reads this');
  await t.rejects(writer.putBlob(a.digest, a.bytes.length, Readable.from([a.bytes])), /EPIPE/);
  await t.rejects(writer.finish(), /EPIPE/, 'and so does everything after it, naming why');
});

t.test('import -: stdin spooled on the cache filesystem, removed with the directories made for it', async (t) => {
  const storage = path.join(dir, 'storage');
  const stdin = (chunks: Buffer[], tty = false) => Object.assign(Readable.from(chunks), { isTTY: tty }) as unknown as NodeJS.ReadStream;
  const spool = await spoolStdin(storage, stdin([Buffer.from('tar '), Buffer.from('bytes')]));
  t.ok(spool.file.startsWith(path.join(storage, 'v1', 'incoming', `stdin-${process.pid}-`)));
  t.equal(readFileSync(spool.file, 'utf8'), 'tar bytes');
  await spool.dispose();
  t.notOk(existsSync(storage), 'the storage it had to create for the spool is gone again');

  await t.rejects(spoolStdin(storage, stdin([], true)), new CliError('import: - reads a tar from stdin, which is a terminal: pipe or redirect one into it', 2));
  t.notOk(existsSync(storage), 'a terminal is refused before anything is made');

  const broken = Object.assign(
    new Readable({
      read() {
        this.destroy(new Error('stdin closed badly'));
      },
    }),
    { isTTY: false },
  ) as unknown as NodeJS.ReadStream;
  await t.rejects(spoolStdin(storage, broken), { exitCode: 1, message: /^import: reading stdin into .*: stdin closed badly$/ });
  t.notOk(existsSync(storage), 'a failed read leaves nothing either');
});
