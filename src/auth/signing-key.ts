import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { ConfigError } from '../config/index.js';

/** The JWS algorithms a signing key may have; the one a key has is the only one its tokens verify with. */
export type SigningAlgorithm = 'ES256' | 'ES384' | 'ES512' | 'RS256' | 'EdDSA';

export interface SigningKey {
  readonly alg: SigningAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public key's RFC 7638 thumbprint: every token's `kid`, and what tells two keys apart in a log line. */
  readonly kid: string;
  /** The PEM file it was read from. */
  readonly file: string;
  /** Whether this start generated it (the first start on this storage). */
  readonly generated: boolean;
}

/** The generated key's file is unreadable: the operator must replace or remove it, never a silent new key. */
export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
}

export interface SigningKeyLocation {
  /** `auth.signingKey`: an absolute path to a PEM private key. */
  readonly configured: string | undefined;
  /** `storage.path`: where a key is generated when none is configured. */
  readonly storageRoot: string;
}

/** Where the generated key lives: beside the blobs, so every process and restart on this storage shares it. */
export function generatedKeyFile(storageRoot: string): string {
  return path.join(storageRoot, 'auth', 'signing-key.pem');
}

/**
 * The configured key, or the storage's generated one, created on first use. Creation is atomic and
 * first-writer-wins (link(2) of a complete file refuses to replace one): two processes starting
 * together on one storage end up with the same key, and no reader ever sees half a PEM file.
 */
export async function loadSigningKey(where: SigningKeyLocation): Promise<SigningKey> {
  if (where.configured !== undefined) {
    const file = where.configured;
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError('auth.signingKey', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return parseKey(pem, file, false, (reason) => new ConfigError('auth.signingKey', `${file}: ${reason}`));
  }
  const file = generatedKeyFile(where.storageRoot);
  const unreadable = (reason: string) =>
    new SigningKeyError(`the token signing key ${file} is unusable (${reason}); restore it, or delete it to generate a new one (every token issued so far stops working)`);
  const existing = await readIfExists(file);
  if (existing !== undefined) return parseKey(existing, file, false, unreadable);
  const created = await createKeyFile(file);
  return parseKey(created.pem, file, created.won, unreadable);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes a new P-256 key under a temp name, then links it into place unless another process got there first. */
async function createKeyFile(file: string): Promise<{ pem: string; won: boolean }> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(pem);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process on this storage generated one meanwhile: theirs is the key.
    return { pem: await readFile(file, 'utf8'), won: false };
  } finally {
    await unlink(temp);
  }
  await syncDir(dir);
  return { pem, won: true };
}

/** Makes the new link survive a power loss, so the next start does not generate (and invalidate) again. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function parseKey(pem: string, file: string, generated: boolean, fail: (reason: string) => Error): Promise<SigningKey> {
  if (!pem.includes('-----BEGIN')) throw fail('not a PEM file');
  // PKCS#8 (`ENCRYPTED PRIVATE KEY`) or legacy OpenSSL (`Proc-Type: 4,ENCRYPTED`): there is no passphrase to give.
  if (/ENCRYPTED/.test(pem)) throw fail('an encrypted private key; give an unencrypted one (mount it from a Secret)');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw fail('not a PEM private key (a certificate or public key will not do)');
  }
  const alg = algorithmOf(privateKey, fail);
  const publicKey = createPublicKey(privateKey);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return { alg, privateKey, publicKey, kid, file, generated };
}

const CURVES: Readonly<Record<string, SigningAlgorithm>> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

function algorithmOf(key: KeyObject, fail: (reason: string) => Error): SigningAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const alg = CURVES[details.namedCurve ?? ''];
      if (alg === undefined) throw fail(`EC curve ${details.namedCurve ?? '?'} is not supported; use P-256, P-384 or P-521`);
      return alg;
    }
    case 'rsa':
      if ((details.modulusLength ?? 0) < 2048) throw fail(`an RSA key of ${details.modulusLength ?? 0} bits is too weak; use at least 2048`);
      return 'RS256';
    case 'ed25519':
      return 'EdDSA';
    default:
      throw fail(`a ${key.asymmetricKeyType ?? 'unknown'} key cannot sign tokens; use EC (P-256), RSA or Ed25519`);
  }
}
