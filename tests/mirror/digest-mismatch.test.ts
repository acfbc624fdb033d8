import t from 'tap';
import { mismatchCases } from '../fixtures/digest-mismatch.js';

mismatchCases(t);
t.test('hashed on the hashing thread (storage.hashThread)', async (t) => mismatchCases(t, { hashThread: true }));
