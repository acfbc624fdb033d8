import t from 'tap';
import { PassThroughWriter } from '../../src/mirror/pass-through-writer.js';
import { createVerifier, threadVerifier } from '../../src/storage/index.js';
import { blobWriterContract } from '../fixtures/blob-writer-contract.js';

// The download the mirror streams when the store keeps nothing: the same contract as a file-backed
// writer, except that it holds back its newest chunk, refuses late followers and stops with none.
for (const [name, verifier] of [['on the calling thread', createVerifier], ['on the hashing thread', threadVerifier]] as const) {
  t.test(`hashed ${name}`, async (t) => {
    blobWriterContract(t, {
      begin: async (_t, digest, expectedSize) => new PassThroughWriter(digest, expectedSize, verifier(digest, expectedSize)),
      holdsBack: 'chunk',
      lateFollowers: false,
      needsFollowers: true,
    });
  });
}
