import t from 'tap';
import { mismatchCases } from '../fixtures/digest-mismatch.js';

mismatchCases(t);
