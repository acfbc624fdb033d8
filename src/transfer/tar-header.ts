import { LayoutError } from './errors.js';

/**
 * The ustar header, read and written. Our own, not tar-stream: import reads a tar twice (check,
 * then copy) by seeking to each member's data, and an interrupted export appends to its partial
 * tar after finding where the last complete member ends; both need member offsets, which a
 * streaming parser does not give. Reading also understands what other tools write: pax headers
 * (`x`, `g`), GNU long names (`L`), base-256 sizes, and links (`docker save` links shared layers).
 */
export const BLOCK = 512;

export type MemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink' | 'other';

export interface RawHeader {
  readonly name: string;
  readonly size: number;
  readonly type: MemberType;
  readonly linkname: string;
}

const TYPES: Readonly<Record<string, MemberType>> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '5': 'directory',
  '2': 'symlink',
  '1': 'hardlink',
  x: 'pax',
  g: 'pax-global',
  L: 'gnu-longname',
  K: 'gnu-longlink',
};

function text(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? length : nul).toString('utf8');
}

/** Octal (NUL/space terminated), or GNU base-256 when the top bit of the first byte is set. */
function numeric(block: Buffer, offset: number, length: number, what: string): number {
  const field = block.subarray(offset, offset + length);
  if ((field[0] ?? 0) & 0x80) {
    let value = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    if (!Number.isSafeInteger(value)) throw new LayoutError(`tar header: ${what} is too large`);
    return value;
  }
  const digits = field.toString('ascii').replace(/[\0 ]+$/g, '').trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw new LayoutError(`not a tar archive (a header's ${what} field is not octal)`);
  return parseInt(digits, 8);
}

export function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/** One 512-byte header; throws LayoutError when the checksum says it is no tar header. */
export function decodeHeader(block: Buffer): RawHeader {
  const stored = numeric(block, 148, 8, 'checksum');
  let unsigned = 0;
  for (let i = 0; i < BLOCK; i++) unsigned += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  if (stored !== unsigned) throw new LayoutError('not a tar archive, or a damaged one (header checksum mismatch)');
  const magic = text(block, 257, 6);
  const prefix = magic.startsWith('ustar') ? text(block, 345, 155) : '';
  const name = text(block, 0, 100);
  const flag = String.fromCharCode(block[156] ?? 0);
  return {
    name: prefix === '' ? name : `${prefix}/${name}`,
    size: numeric(block, 124, 12, 'size'),
    type: TYPES[flag] ?? 'other',
    linkname: text(block, 157, 100),
  };
}

/** The `path` and `size` records of a pax extended header; others are ignored. */
export function parsePax(data: Buffer): { path?: string; linkpath?: string; size?: number } {
  const out: { path?: string; linkpath?: string; size?: number } = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.subarray(at, space).toString('ascii'), 10);
    if (!(length > 0) || at + length > data.length) throw new LayoutError('tar: malformed pax header');
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    else if (key === 'linkpath') out.linkpath = value;
    else if (key === 'size' && /^\d+$/.test(value)) out.size = Number(value);
    at += length;
  }
  return out;
}

/** Bytes of padding after `size` bytes of member data. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

const MTIME = 0;

/**
 * A ustar header for a regular file (or the directory `name/`). Our paths are `blobs/sha256/<hex>`
 * and a few names at the top: all ASCII, all under 100 bytes.
 */
export function encodeHeader(name: string, size: number, type: 'file' | 'directory' = 'file'): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar: name too long: ${name}`);
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  octal(header, 100, 8, type === 'directory' ? 0o755 : 0o644);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, MTIME);
  header.fill(0x20, 148, 156);
  header.write(type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
  if (value > 0o77777777777 && length === 12) {
    // GNU base-256 for a member of 8 GiB or more: every reader we target understands it.
    let rest = value;
    for (let i = offset + length - 1; i > offset; i--) {
      header[i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
    header[offset] = 0x80;
    return;
  }
  const digits = value.toString(8).padStart(length - 1, '0');
  if (digits.length > length - 1) throw new Error(`tar: ${value} does not fit a ${length}-byte field`);
  header.write(`${digits}\0`, offset, length, 'ascii');
}
