import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LayoutError } from './errors.js';
import { BLOCK, decodeHeader, isZeroBlock, padding, parsePax } from './tar-header.js';

/**
 * Copies read 64 KiB at a time, as upstream bodies arrive: the cache's writer copies chunks up to
 * a slab's size (1 MiB) into its reusable slabs, and anything larger into fresh memory per chunk (1 MiB reads, when
 * the writer still kept the last 64 chunks, took a 1 GiB import to 181 MiB RSS).
 */
export const READ_CHUNK = 64 * 1024;
/** Hashing reads into one buffer of this size, reused: no garbage however large the layout. */
const HASH_CHUNK = 1024 * 1024;

/**
 * The files of an image layout, wherever they are: a directory, or the members of a tar. Names are
 * relative and '/'-separated (`index.json`, `blobs/sha256/<hex>`, `<id>/layer.tar`).
 */
export interface LayoutFiles {
  /** What the operator named, for messages. */
  readonly where: string;
  /** Size of a regular file (links followed); undefined when absent. */
  size(name: string): Promise<number | undefined>;
  /** A small file whole (JSON); undefined when absent; LayoutError when larger than `max`. */
  read(name: string, max: number): Promise<Buffer | undefined>;
  /** The bytes of a file known to exist. */
  open(name: string): Readable;
  /** Hashes a file known to exist with `hash`; resolves its size. */
  hash(name: string, hash: Hash): Promise<number>;
  close(): Promise<void>;
}

/** A name from inside the input (manifest.json, a symlink): never outside the layout. */
export function cleanName(name: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new LayoutError(`the path ${JSON.stringify(name)} points outside the layout`);
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}

/**
 * A directory or a tar file; LayoutError when it is neither, or a tar that is cut short. `label`
 * names it in messages (`stdin` for a tar spooled from there).
 */
export async function openLayoutFiles(where: string, label = where): Promise<LayoutFiles> {
  let info;
  try {
    info = await stat(where);
  } catch {
    throw new LayoutError(`${label}: no such file or directory`);
  }
  if (info.isDirectory()) return directoryFiles(where);
  if (info.isFile()) return tarFiles(where, await scanTar(where, info.size, label), label);
  throw new LayoutError(`${label} is neither a directory nor a tar file`);
}

function directoryFiles(root: string): LayoutFiles {
  const full = (name: string) => path.join(root, ...cleanName(name).split('/'));
  return {
    where: root,
    async size(name) {
      try {
        const s = await stat(full(name));
        return s.isFile() ? s.size : undefined;
      } catch {
        return undefined;
      }
    },
    async read(name, max) {
      const size = await this.size(name);
      if (size === undefined) return undefined;
      if (size > max) throw new LayoutError(`${name} is ${size} bytes, more than the ${max} expected`);
      return readWhole(createReadStream(full(name)));
    },
    open: (name) => createReadStream(full(name), { highWaterMark: READ_CHUNK }),
    async hash(name, hash) {
      const fh = await open(full(name), 'r');
      try {
        return await hashRange(fh, 0, Infinity, hash);
      } finally {
        await fh.close();
      }
    },
    close: async () => {},
  };
}

interface Member {
  readonly offset: number;
  readonly size: number;
}

function tarFiles(file: string, members: ReadonlyMap<string, Member>, label: string): LayoutFiles {
  const stream = (m: Member): Readable =>
    m.size === 0 ? Readable.from([]) : createReadStream(file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: READ_CHUNK });
  return {
    where: label,
    size: async (name) => members.get(cleanName(name))?.size,
    async read(name, max) {
      const m = members.get(cleanName(name));
      if (m === undefined) return undefined;
      if (m.size > max) throw new LayoutError(`${name} is ${m.size} bytes, more than the ${max} expected`);
      return readWhole(stream(m));
    },
    open(name) {
      const m = members.get(cleanName(name));
      if (m === undefined) throw new LayoutError(`${name} is not in ${label}`);
      return stream(m);
    },
    async hash(name, hash) {
      const m = members.get(cleanName(name));
      if (m === undefined) throw new LayoutError(`${name} is not in ${label}`);
      const fh = await open(file, 'r');
      try {
        return await hashRange(fh, m.offset, m.size, hash);
      } finally {
        await fh.close();
      }
    },
    close: async () => {},
  };
}

/** Feeds `length` bytes (or up to the end) from `start` to `hash`, through one reused buffer. */
async function hashRange(fh: FileHandle, start: number, length: number, hash: Hash): Promise<number> {
  const buf = Buffer.allocUnsafeSlow(HASH_CHUNK);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(HASH_CHUNK, length - done), start + done);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    done += bytesRead;
  }
  return done;
}

export async function readWhole(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface TarMember {
  readonly name: string;
  /** Where its header starts. */
  readonly headerOffset: number;
  /** Where its data starts. */
  readonly offset: number;
  readonly size: number;
  readonly type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  readonly linkname: string;
}

/**
 * Every member of a tar by its header, in order, reading headers only (data is skipped by offset).
 * `end` is where the end-of-archive marker starts, or undefined when the file stops before one.
 * A member whose data runs past the end of the file is a truncated tar.
 */
export async function listTar(file: string, fileSize: number): Promise<{ members: TarMember[]; end: number | undefined; cutAt: number | undefined }> {
  const fh = await open(file, 'r');
  try {
    const members: TarMember[] = [];
    let at = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: ReturnType<typeof parsePax> = {};
    for (;;) {
      if (at + BLOCK > fileSize) return { members, end: undefined, cutAt: at };
      const block = await readAt(fh, at, BLOCK);
      if (isZeroBlock(block)) return { members, end: at, cutAt: undefined };
      const header = decodeHeader(block);
      const size = pax.size ?? header.size;
      const dataAt = at + BLOCK;
      if (dataAt + size > fileSize) return { members, end: undefined, cutAt: at };
      if (header.type === 'pax' || header.type === 'gnu-longname' || header.type === 'gnu-longlink') {
        const data = await readAt(fh, dataAt, size);
        if (header.type === 'pax') pax = parsePax(data);
        else if (header.type === 'gnu-longname') longName = data.toString('utf8').replace(/\0+$/, '');
        else longLink = data.toString('utf8').replace(/\0+$/, '');
      } else if (header.type !== 'pax-global') {
        const type = header.type;
        members.push({
          name: pax.path ?? longName ?? header.name,
          headerOffset: at,
          offset: dataAt,
          size,
          type,
          linkname: pax.linkpath ?? longLink ?? header.linkname,
        });
        pax = {};
        longName = undefined;
        longLink = undefined;
      }
      at = dataAt + size + padding(size);
    }
  } finally {
    await fh.close();
  }
}

/** Regular files by clean name, links resolved to their targets; LayoutError for a truncated tar. */
async function scanTar(file: string, fileSize: number, label: string): Promise<Map<string, Member>> {
  const { members, end, cutAt } = await listTar(file, fileSize);
  if (end === undefined && members.length === 0 && fileSize < BLOCK) throw new LayoutError(`${label} is not a tar archive (${fileSize} bytes, less than one tar header)`);
  if (end === undefined) {
    throw new LayoutError(`${label} is a truncated tar: it ends at byte ${fileSize}${cutAt !== undefined && cutAt > 0 && cutAt < fileSize ? `, inside the member after byte ${cutAt}` : ''} without an end-of-archive marker`);
  }
  const byName = new Map<string, Member>();
  const links: TarMember[] = [];
  for (const m of members) {
    if (m.type === 'file') byName.set(cleanName(m.name), { offset: m.offset, size: m.size });
    else if (m.type === 'symlink' || m.type === 'hardlink') links.push(m);
  }
  // Links to links resolve in as many rounds as the chain is long; a loop resolves to nothing.
  for (let round = 0; round < 8 && links.length > 0; round++) {
    for (let i = links.length - 1; i >= 0; i--) {
      const link = links[i]!;
      const target = link.type === 'hardlink' ? cleanName(link.linkname) : cleanName(path.posix.join(path.posix.dirname(link.name), link.linkname));
      const found = byName.get(target);
      if (found === undefined) continue;
      byName.set(cleanName(link.name), found);
      links.splice(i, 1);
    }
  }
  return byName;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new LayoutError('tar: unexpected end of file');
    done += bytesRead;
  }
  return buf;
}
