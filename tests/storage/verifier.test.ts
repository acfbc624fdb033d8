import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createVerifier, DigestMismatchError, SizeMismatchError } from '../../src/storage/index.js';
import { digestOf } from '../fixtures/blob-streams.js';

t.test('bytes fed in any chunking verify against their digest and size', async (t) => {
  const bytes = randomBytes(10_000);
  for (const size of [undefined, bytes.length]) {
    const verifier = createVerifier(digestOf(bytes), size);
    verifier.update(bytes.subarray(0, 1));
    verifier.update(bytes.subarray(1, 4096));
    verifier.update(bytes.subarray(4096));
    await t.resolves(verifier.finish(), `expected size ${size}`);
  }
  const sha512 = createVerifier(digestOf(bytes, 'sha512'), undefined);
  sha512.update(bytes);
  await t.resolves(sha512.finish(), 'the digest names its algorithm');
});

t.test('a wrong size or digest rejects with the error that names it', async (t) => {
  const bytes = randomBytes(1000);
  const short = createVerifier(digestOf(bytes), bytes.length + 1);
  short.update(bytes);
  await t.rejects(short.finish(), SizeMismatchError);
  const other = digestOf(Buffer.from('other'));
  const wrong = createVerifier(other, bytes.length);
  wrong.update(bytes);
  const error = await wrong.finish().catch((e: unknown) => e);
  t.type(error, DigestMismatchError);
  t.match(error, { expected: other, actual: digestOf(bytes) });
});
