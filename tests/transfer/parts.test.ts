import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { mustRun } from '../fixtures/daemons.js';
import { sha256 } from '../fixtures/images.js';
import { routeContext } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { parseDigest } from '../../src/oci/index.js';
import { StorageError } from '../../src/storage/index.js';
import { CliError } from '../../src/cli/cli-error.js';
import { onStorage, transferCliError, ttyProgress } from '../../src/cli/transfer-host.js';
import { createAdminSocketServer, holdStorage, releaseStorage } from '../../src/admin/index.js';
import { PinFile } from '../../src/cache/index.js';
import { BlobMismatchError, LayoutError, openLayoutFiles, parseImageRef, parseSummary, syncExportItems, TransferError, type ExportSource } from '../../src/transfer/index.js';
import { decodeHeader, encodeHeader, parsePax } from '../../src/transfer/tar-header.js';
import { copyVerified } from '../../src/transfer/verified-copy.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-transfer-parts-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function config(upstreams: Record<string, object>, sync: unknown = []) {
  return parseConfig({ storage: { path: dir }, upstreams, defaultUpstream: Object.keys(upstreams)[0], sync }, { baseDir: dir, env: {} });
}

t.test('image references: full names, Docker Hub short names, aliases, digests', async (t) => {
  const names = routeContext(config({ 'docker.io': { url: 'http://127.0.0.1:1', aliases: ['index.docker.io'] }, 'ghcr.io': { url: 'http://127.0.0.1:2' } }));
  const digest = `sha256:${'ab'.repeat(32)}`;
  t.match(parseImageRef('docker.io/library/nginx:1.27', names), { upstream: 'docker.io', repository: 'library/nginx', tag: '1.27' });
  t.match(parseImageRef('nginx:1.27', names), { upstream: 'docker.io', repository: 'library/nginx', tag: '1.27' }, 'docker save names');
  t.match(parseImageRef('team/app:1', names), { upstream: 'docker.io', repository: 'team/app' });
  t.match(parseImageRef('index.docker.io/alpine:3', names), { upstream: 'docker.io', repository: 'library/alpine' }, 'an alias');
  t.match(parseImageRef(`ghcr.io/org/app@${digest}`, names), { upstream: 'ghcr.io', repository: 'org/app', tag: undefined, digest });
  t.match(parseImageRef(`ghcr.io/org/app:1@${digest}`, names), { tag: '1', digest });
  t.throws(() => parseImageRef('quay.io/org/app:1', names), /quay\.io is not a configured upstream/);
  t.throws(() => parseImageRef('localhost/app:1', names), /localhost is not a configured upstream/);
  t.throws(() => parseImageRef('ghcr.io/org/app@sha256:zz', names), LayoutError);
  t.throws(() => parseImageRef('ghcr.io/org/app:bad tag', names), /not a valid image reference/);
  const noHub = routeContext(config({ 'ghcr.io': { url: 'http://127.0.0.1:2' } }));
  t.throws(() => parseImageRef('nginx:1', noHub), /docker\.io is not a configured upstream or alias/);
});

t.test('tar headers: ours, pax, GNU long names, links, sizes of 8 GiB and more', async (t) => {
  const big = 9 * 1024 * 1024 * 1024;
  t.equal(decodeHeader(encodeHeader('blobs/sha256/x', big)).size, big, 'base-256 both ways');
  t.equal(decodeHeader(encodeHeader('dir', 0, 'directory')).type, 'directory');
  t.throws(() => encodeHeader('x'.repeat(101), 1), /name too long/);
  const damaged = encodeHeader('a', 1);
  damaged[0] = 0x62;
  t.throws(() => decodeHeader(damaged), /checksum mismatch/);
  t.same(parsePax(Buffer.from('18 path=long/name\n13 size=4096\n16 linkpath=a/b\n')), { path: 'long/name', size: 4096, linkpath: 'a/b' });
  t.throws(() => parsePax(Buffer.from('99 path=x\n')), /malformed pax/);

  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`;
  const src = path.join(dir, 'src');
  mkdirSync(path.join(src, path.dirname(long)), { recursive: true });
  writeFileSync(path.join(src, long), 'long name\n');
  for (const format of ['gnu', 'pax']) {
    const file = path.join(dir, `${format}.tar`);
    await mustRun('tar', [`--format=${format}`, '-C', src, '-cf', file, long]);
    const files = await openLayoutFiles(file);
    t.equal((await files.read(long, 100))?.toString(), 'long name\n', `${format}: the long name is read back`);
    t.equal(await files.size('nope'), undefined);
    await t.rejects(files.read(long, 3), /more than the 3 expected/);
    t.throws(() => files.open('nope'), /is not in/);
  }
});

t.test('bytes checked as they are copied', async (t) => {
  const bytes = Buffer.from('some blob');
  const digest = parseDigest(sha256(bytes));
  const sink = async () => {};
  await t.resolves(copyVerified(Readable.from([bytes]), digest, bytes.length, sink));
  await t.rejects(copyVerified(Readable.from([bytes]), digest, bytes.length - 1, sink), /more than the 8 bytes/);
  await t.rejects(copyVerified(Readable.from([bytes]), digest, bytes.length + 1, sink), /has 9 bytes, its descriptor says 10/);
  await t.rejects(copyVerified(Readable.from([Buffer.from('other blob')]), parseDigest(sha256('other blog')), 10, sink), BlobMismatchError);
});

t.test('export summaries are checked before --since trusts them', async (t) => {
  const good = { format: 'regmirror-export/v1', id: 'x', createdAt: 'now', images: [{ reference: 'r', digest: 'd', filtered: [] }], carried: { digests: [] }, baseline: [] };
  t.ok(parseSummary(Buffer.from(JSON.stringify(good)), 's'));
  t.throws(() => parseSummary(Buffer.from('{'), 's'), /s is not JSON/);
  t.throws(() => parseSummary(Buffer.from('{}'), 's'), /"format" is not/);
  t.throws(() => parseSummary(Buffer.from(JSON.stringify({ ...good, id: 1 })), 's'), /"id" and "createdAt"/);
  t.throws(() => parseSummary(Buffer.from(JSON.stringify({ ...good, images: {} })), 's'), /"images" must be a list/);
  t.throws(() => parseSummary(Buffer.from(JSON.stringify({ ...good, images: [{}] })), 's'), /every image needs/);
  t.throws(() => parseSummary(Buffer.from(JSON.stringify({ ...good, images: [{ reference: 'r', digest: 'd', filtered: ['x'] }] })), 's'), /"filtered" of r/);
  t.throws(() => parseSummary(Buffer.from(JSON.stringify({ ...good, carried: {} })), 's'), /carried\.digests/);
  t.throws(() => parseSummary(Buffer.from(JSON.stringify({ ...good, baseline: ['x'] })), 's'), /"baseline"/);
});

t.test('--from-sync selects what a sync run would', async (t) => {
  const c = config({ 'registry.test': { url: 'http://127.0.0.1:1' } }, {
    entries: [
      { upstream: 'registry.test', repository: 'team/exact', tags: ['1', '2'], platforms: ['linux/arm64'] },
      { upstream: 'registry.test', repository: 'team/*', tags: { semver: '^1' } },
    ],
  });
  const source: ExportSource = {
    manifest: () => Promise.reject(new Error('not read')),
    blob: () => Promise.reject(new Error('not read')),
    tags: async () => ['1.0.0', '2.0.0', 'latest'],
    catalog: async () => ['team/a', 'other/b'],
    referrers: () => Promise.reject(new Error('not read')),
  };
  const items = await syncExportItems(c.sync.entries, source);
  t.same(
    items.map((i) => [`${i.ref.repository}:${i.ref.tag ?? ''}`, i.platforms]),
    [['team/exact:1', ['linux/arm64']], ['team/exact:2', ['linux/arm64']], ['team/a:1.0.0', []]],
  );
});

t.test('CLI plumbing: exit codes by error class, and the bars only on a terminal', async (t) => {
  t.equal((transferCliError('import', new LayoutError('bad')) as CliError).exitCode, 2);
  t.equal((transferCliError('import', new BlobMismatchError('bad')) as CliError).exitCode, 2);
  t.equal((transferCliError('import', new TransferError('full')) as CliError).exitCode, 1);
  t.equal((transferCliError('import', new StorageError('io')) as CliError).exitCode, 1);
  t.equal((transferCliError('import', new Error('other')) as CliError).message, 'import: other');
  const cli = new CliError('as is', 2);
  t.equal(transferCliError('import', cli), cli);
  t.equal(transferCliError('import', 'a string'), 'a string');

  t.equal(ttyProgress(true).progress, undefined, 'no bars with --json');
  const stdout = process.stdout as { isTTY?: boolean };
  const wasTTY = stdout.isTTY;
  const write = process.stdout.write.bind(process.stdout);
  let drawn = '';
  stdout.isTTY = true;
  process.stdout.write = ((chunk: string) => ((drawn += chunk), true)) as typeof process.stdout.write;
  try {
    const bars = ttyProgress(false);
    bars.progress?.imageStarted('registry.test/team/a:1', 2, 2048);
    bars.progress?.blobDone('registry.test/team/a:1', 1024);
    bars.progress?.imageFinished('registry.test/team/a:1', true);
    bars.finish();
  } finally {
    process.stdout.write = write;
    stdout.isTTY = wasTTY;
  }
  t.match(drawn, /ok registry\.test\/team\/a:1 {2}1\/2 blobs/);
  t.match(drawn, /1\.0 KiB \/ 2\.0 KiB/);
});

t.test('where the storage work runs: refused beside a cache command, and a storage that cannot open', async (t) => {
  const storage = path.join(dir, 'held');
  const holder = createAdminSocketServer({ kind: 'cache', pid: process.pid, command: 'cache verify' }, undefined, () => {});
  await holdStorage(storage, holder);
  t.teardown(() => releaseStorage(holder));
  const held = parseConfig({ storage: { path: storage }, upstreams: { 'registry.test': { url: 'http://127.0.0.1:1' } } }, { baseDir: dir, env: {} });
  await t.rejects(onStorage(held, 'import', async () => 'ran'), /^import: storage .* is in use by regmirror cache verify \(pid \d+\)$/);
  const file = path.join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  const broken = parseConfig({ storage: { path: file }, upstreams: { 'registry.test': { url: 'http://127.0.0.1:1' } } }, { baseDir: dir, env: {} });
  const err = await onStorage(broken, 'export', async () => 'ran').catch((e: unknown) => e);
  t.ok(err instanceof CliError && err.exitCode === 1, 'a storage that cannot be opened: exit 1');
});

t.test('the pin file: absent, added to, and refused when it is not a pin list', async (t) => {
  const root = path.join(dir, 'pins');
  const pins = new PinFile(root);
  t.same(await pins.load(), []);
  await pins.add([{ upstream: 'docker.io', repository: 'library/nginx' }]);
  await pins.add([{ upstream: 'docker.io', repository: 'library/nginx' }, { upstream: 'ghcr.io', repository: 'org/app' }]);
  t.same(await pins.load(), [{ upstream: 'docker.io', repository: 'library/nginx' }, { upstream: 'ghcr.io', repository: 'org/app' }]);
  writeFileSync(pins.path, '{');
  await t.rejects(pins.load(), /is not JSON: fix or remove it/);
  writeFileSync(pins.path, JSON.stringify({ v: 1, repositories: ['no-slash'] }));
  await t.rejects(pins.load(), /must be \{"v":1,"repositories"/);
});
