import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '../config/index.js';

/** TLS 1.0 and 1.1 are broken; every registry client speaks 1.2. */
export const TLS_MIN_VERSION = 'TLSv1.2';

/** Where the PEM files are: `tls.cert`, `tls.key` and `tls.clientCA` of the config. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly clientCA: string | undefined;
}

/** The files' bytes as read, before any check: what a reload compares to tell whether anything changed. */
export interface TlsFileContents {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
  /** One hash over all three. */
  readonly digest: string;
}

/** A checked certificate and key: a context that serves. */
export interface TlsMaterial {
  readonly context: SecureContextOptions;
  /** What log lines say about the serving certificate. */
  readonly subject: string;
  readonly fingerprint: string;
  readonly validTo: string;
  readonly digest: string;
}

/** The subject CN of a client certificate the handshake verified against `tls.clientCA`, else undefined. */
export function verifiedClientName(socket: Socket): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  // Several CNs name no one in particular: no identity rather than a guess.
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}

/** Reads the three files; a missing or unreadable one is a ConfigError naming its key. */
export async function readTlsFiles(files: TlsFiles): Promise<TlsFileContents> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.cert, 'tls.cert'),
    readPem(files.key, 'tls.key'),
    files.clientCA === undefined ? undefined : readPem(files.clientCA, 'tls.clientCA'),
  ]);
  const hash = createHash('sha256');
  for (const part of [cert, key, ca ?? Buffer.alloc(0)]) hash.update(String(part.length)).update(':').update(part);
  return { cert, key, ca, digest: hash.digest('hex') };
}

/**
 * Checks what readTlsFiles read: a certificate, a private key that belongs to it and, when asked
 * for, a CA bundle. A half-written file or a pair from two different renewals fails here, with a
 * ConfigError naming the key at fault, before any listener sees it.
 */
export function checkTlsMaterial(files: TlsFiles, contents: TlsFileContents): TlsMaterial {
  const leaf = parse(() => new X509Certificate(contents.cert), 'tls.cert', `${files.cert} holds no PEM certificate`);
  const key = parse(() => createPrivateKey(contents.key), 'tls.key', `${files.key} holds no PEM private key`);
  if (!leaf.checkPrivateKey(key)) throw new ConfigError('tls.key', `${files.key} is not the private key of the certificate in ${files.cert}`);
  if (contents.ca !== undefined) parse(() => new X509Certificate(contents.ca!), 'tls.clientCA', `${files.clientCA} holds no PEM certificate`);
  const context: SecureContextOptions = { cert: contents.cert, key: contents.key, minVersion: TLS_MIN_VERSION, ...(contents.ca ? { ca: contents.ca } : {}) };
  // What the checks above do not see, such as a cut-off intermediate after a good leaf certificate.
  parse(() => createSecureContext(context), 'tls.cert', `${files.cert} is not a usable certificate chain`);
  return { context, subject: leaf.subject.replaceAll('\n', ', '), fingerprint: leaf.fingerprint256, validTo: new Date(leaf.validTo).toISOString(), digest: contents.digest };
}

async function readPem(file: string, key: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (bytes.length === 0) throw new ConfigError(key, `${file} is empty`);
  return bytes;
}

function parse<T>(read: () => T, key: string, message: string): T {
  try {
    return read();
  } catch (err) {
    throw new ConfigError(key, `${message} (${(err as Error).message})`);
  }
}
