import { readFile } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../config/index.js';

/** Reads the rule's public keys at start-up: a missing or unusable key stops it, naming the key. */
export async function loadPublicKeys(files: readonly string[], key: string): Promise<KeyObject[]> {
  return Promise.all(
    files.map(async (file, i) => {
      const where = `${key}[${i}]`;
      let pem: string;
      try {
        pem = await readFile(file, 'utf8');
      } catch (err) {
        throw new ConfigError(where, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      let publicKey: KeyObject;
      try {
        publicKey = createPublicKey(pem);
      } catch {
        throw new ConfigError(where, `${file} is not a PEM public key (as \`cosign generate-key-pair\` writes cosign.pub)`);
      }
      if (!['ec', 'rsa', 'ed25519'].includes(publicKey.asymmetricKeyType ?? '')) {
        throw new ConfigError(where, `${file} is a ${publicKey.asymmetricKeyType ?? 'unknown'} key: ECDSA, RSA or Ed25519 keys are supported`);
      }
      return publicKey;
    }),
  );
}
