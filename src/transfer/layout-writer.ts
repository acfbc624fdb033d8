import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { digestAlgorithm, digestHex, isDigestString, parseDigest, type Digest } from '../oci/index.js';
import { LayoutError, TransferError } from './errors.js';
import { listTar } from './layout-files.js';
import { SUMMARY_FILE } from './summary.js';
import { BLOCK, encodeHeader, padding } from './tar-header.js';
import { copyVerified } from './verified-copy.js';

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT = Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);

/**
 * Where an export goes: a layout directory, or a tar of one. Each blob is written once, verified
 * as it is written, and becomes part of the output only whole (a directory entry by rename, a tar
 * member by rewriting its header), so an interrupted export resumes from what is there.
 */
export interface LayoutWriter {
  /** Whether a blob of this digest and size is already in the output (an earlier, interrupted run). */
  has(digest: Digest, size: number): boolean;
  /** Writes a blob; rejects (leaving nothing of it) when the bytes do not match digest and size. */
  putBlob(digest: Digest, size: number, body: Readable, tap?: (chunk: Buffer) => void): Promise<void>;
  /** A top-level file (index.json, the summary): written last, replaced whole. */
  putFile(name: string, bytes: Buffer): Promise<void>;
  /** Completes the output (a tar gets its end marker and its final name). */
  finish(): Promise<void>;
  /** Stops, keeping every whole blob for the next run. */
  abandon(): Promise<void>;
}

export function isTarOutput(output: string): boolean {
  return output.endsWith('.tar');
}

export async function openLayoutWriter(output: string): Promise<LayoutWriter> {
  return isTarOutput(output) ? openTarWriter(output) : openDirWriter(output);
}

function blobName(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

async function openDirWriter(dir: string): Promise<LayoutWriter> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes(OCI_LAYOUT_FILE)) throw new LayoutError(`${dir} is not empty and holds no OCI layout: refusing to write into it`);
  // Another tool's complete layout: its index.json would be replaced by ours.
  if (entries.includes('index.json') && !entries.includes(SUMMARY_FILE)) throw new LayoutError(`${dir} holds a layout regmirror did not write: refusing to replace its index.json`);
  const have = new Map<Digest, number>();
  const blobsDir = path.join(dir, 'blobs');
  for (const alg of await readdir(blobsDir).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(blobsDir, alg))) {
      const file = path.join(blobsDir, alg, name);
      // A temp file of a run that was killed: its blob is fetched again.
      if (name.startsWith('.')) await rm(file, { force: true });
      else if (isDigestString(`${alg}:${name}`)) have.set(parseDigest(`${alg}:${name}`), (await stat(file)).size);
    }
  }
  const writeWhole = async (name: string, bytes: Buffer) => {
    const target = path.join(dir, name);
    const tmp = `${path.dirname(target)}/.${path.basename(target)}.partial-${randomBytes(6).toString('hex')}`;
    await writeFileSynced(tmp, bytes);
    await rename(tmp, target);
  };
  await writeWhole(OCI_LAYOUT_FILE, OCI_LAYOUT);
  return {
    has: (digest, size) => have.get(digest) === size,
    async putBlob(digest, size, body, tap) {
      const target = path.join(dir, ...blobName(digest).split('/'));
      await mkdir(path.dirname(target), { recursive: true });
      const tmp = path.join(path.dirname(target), `.${path.basename(target)}.partial-${randomBytes(6).toString('hex')}`);
      const fh = await open(tmp, 'w');
      try {
        await copyVerified(body, digest, size, async (chunk, at) => void (await fh.write(chunk, 0, chunk.length, at)), tap);
        await fh.sync();
      } catch (err) {
        await fh.close();
        await rm(tmp, { force: true });
        throw err;
      }
      await fh.close();
      await rename(tmp, target);
      have.set(digest, size);
    },
    putFile: writeWhole,
    finish: async () => {},
    abandon: async () => {},
  };
}

async function writeFileSynced(file: string, bytes: Buffer): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A blob's member name in a tar (with `suffix` while pending): a ustar header holds it only for sha256. */
function tarBlobMember(digest: Digest, suffix = ''): string {
  const name = blobName(digest);
  if (Buffer.byteLength(name) + suffix.length > 100) throw new TransferError(`${digest}: only sha256 blobs fit a tar export; export to a directory instead`);
  return name;
}

const BLOB_MEMBER = /^blobs\/(sha256|sha512)\/([0-9a-f]+)$/;

/**
 * A tar grows as `<file>.partial` and takes its name only once complete. A blob's header is first
 * written under a pending name and rewritten in place once the bytes verified, so a killed run
 * leaves at most one pending member at the end: the next run cuts the file there and goes on.
 * Members after the blobs (index.json, the summary, the end marker) are cut too and written anew.
 */
async function openTarWriter(file: string): Promise<LayoutWriter> {
  const partial = `${file}.partial`;
  const exists = async (p: string) => (await stat(p).catch(() => undefined)) !== undefined;
  if (!(await exists(partial)) && (await exists(file))) await rename(file, partial);
  const have = new Map<Digest, number>();
  let position = 0;
  let hasLayoutFile = false;
  if (await exists(partial)) {
    let scan;
    try {
      scan = await listTar(partial, (await stat(partial)).size);
    } catch (err) {
      throw new LayoutError(`${partial} is not a tar an export wrote (${(err as Error).message}); remove it to start afresh`);
    }
    for (const m of scan.members) {
      const blob = BLOB_MEMBER.exec(m.name);
      if (m.type === 'file' && m.name === OCI_LAYOUT_FILE) hasLayoutFile = true;
      else if (m.type === 'file' && blob !== null) have.set(parseDigest(`${blob[1]}:${blob[2]}`), m.size);
      else {
        position = m.headerOffset;
        break;
      }
      position = m.offset + m.size + padding(m.size);
    }
  } else await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const fh = await open(partial, (await exists(partial)) ? 'r+' : 'w');
  await fh.truncate(position);
  const append = async (name: string, bytes: Buffer) => {
    const header = encodeHeader(name, bytes.length);
    await writeAt(fh, Buffer.concat([header, bytes, Buffer.alloc(padding(bytes.length))]), position);
    position += BLOCK + bytes.length + padding(bytes.length);
  };
  if (!hasLayoutFile) await append(OCI_LAYOUT_FILE, OCI_LAYOUT);
  let closed = false;
  return {
    has: (digest, size) => have.get(digest) === size,
    async putBlob(digest, size, body, tap) {
      const name = tarBlobMember(digest, '.partial');
      const headerAt = position;
      const dataAt = headerAt + BLOCK;
      await writeAt(fh, encodeHeader(`${name}.partial`, size), headerAt);
      try {
        await copyVerified(body, digest, size, (chunk, at) => writeAt(fh, chunk, dataAt + at), tap);
        await writeAt(fh, Buffer.alloc(padding(size)), dataAt + size);
        await fh.sync();
        await writeAt(fh, encodeHeader(name, size), headerAt);
      } catch (err) {
        await fh.truncate(headerAt);
        throw err;
      }
      position = dataAt + size + padding(size);
      have.set(digest, size);
    },
    putFile: append,
    async finish() {
      await writeAt(fh, Buffer.alloc(2 * BLOCK), position);
      await fh.truncate(position + 2 * BLOCK);
      await fh.sync();
      closed = true;
      await fh.close();
      await rename(partial, file);
    },
    async abandon() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/**
 * A tar written front to back to a stream (`--output -`): nothing can be rewritten, so a blob whose
 * bytes fail on the way leaves its member cut, and the writer refuses everything after it. The
 * stream then gets no end-of-archive marker, which any reader (regmirror import among them) reports
 * as a truncated tar: a consumer never takes a broken stream for a whole one.
 */
export function openStreamWriter(out: Writable): LayoutWriter {
  let failure: Error | undefined;
  // A reader that went away (EPIPE) fails the write in hand; without a listener it would crash us.
  const onError = (err: Error) => void (failure ??= err);
  out.on('error', onError);
  const send = (bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (failure !== undefined) reject(failure);
      else out.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  const broken = () => new TransferError(`the output stream was cut by an earlier failure (${failure?.message ?? 'unknown'}): it is incomplete`);
  const member = async (name: string, bytes: Buffer) => {
    if (failure !== undefined) throw broken();
    await send(Buffer.concat([encodeHeader(name, bytes.length), bytes, Buffer.alloc(padding(bytes.length))]));
  };
  const close = () =>
    new Promise<void>((resolve) => {
      out.off('error', onError);
      out.end(resolve);
    });
  const ready = member(OCI_LAYOUT_FILE, OCI_LAYOUT);
  ready.catch(() => {});
  return {
    has: () => false,
    async putBlob(digest, size, body, tap) {
      await ready;
      if (failure !== undefined) throw broken();
      const header = encodeHeader(tarBlobMember(digest), size);
      try {
        await send(header);
        // Chunks go out in the order copyVerified hands them over; the positions are implied.
        await copyVerified(body, digest, size, send, tap);
        await send(Buffer.alloc(padding(size)));
      } catch (err) {
        failure ??= err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    },
    putFile: async (name, bytes) => {
      await ready;
      await member(name, bytes);
    },
    async finish() {
      await ready;
      if (failure !== undefined) throw broken();
      await send(Buffer.alloc(2 * BLOCK));
      await close();
    },
    abandon: close,
  };
}

async function writeAt(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += (await fh.write(bytes, done, bytes.length - done, position + done)).bytesWritten;
}
