import { createHash } from 'node:crypto';
import { OciError, quoteInput } from './errors.js';

export type Digest = string & { readonly __brand: 'Digest' };
export type DigestAlgorithm = 'sha256' | 'sha512';

// image-spec descriptor.md: algorithm-component ([+._-] algorithm-component)* ":" encoded.
// The separators are not in [a-z0-9], so the repetition cannot backtrack badly.
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

// Only algorithms we can hash: an unregistered or unhashable one could never be verified
// (registry-protocol.md §1.3), so it is refused up front rather than cached unverified.
const ENCODED: Readonly<Record<DigestAlgorithm, { readonly hexLength: number }>> = {
  sha256: { hexLength: 64 },
  sha512: { hexLength: 128 },
};

const LOWER_HEX = /^[a-f0-9]+$/;
const ANY_HEX = /^[a-fA-F0-9]+$/;

function isAlgorithm(value: string): value is DigestAlgorithm {
  return Object.hasOwn(ENCODED, value);
}

/** Why `value` is not a digest we accept, or undefined if it is one. */
function digestProblem(value: string): string | undefined {
  // 7 + 128 is the longest digest we accept; checking first keeps messages and regex work small.
  if (value.length > 256) return `digest is too long (${value.length} characters)`;
  if (!GRAMMAR.test(value)) return `${quoteInput(value)} is not a digest (algorithm:encoded)`;
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  if (!isAlgorithm(algorithm)) return `digest algorithm ${quoteInput(algorithm)} is not supported (sha256, sha512)`;
  const { hexLength } = ENCODED[algorithm];
  if (!LOWER_HEX.test(encoded)) {
    return ANY_HEX.test(encoded)
      ? `${algorithm} digest must use lowercase hex, got uppercase in ${quoteInput(value)}`
      : `${algorithm} digest must be hex, got ${quoteInput(value)}`;
  }
  if (encoded.length !== hexLength) {
    return `${algorithm} digest must have ${hexLength} hex characters, got ${encoded.length}`;
  }
  return undefined;
}

/** Validates a digest string; throws OciError('DIGEST_INVALID') saying what is wrong. */
export function parseDigest(value: string): Digest {
  const problem = digestProblem(value);
  if (problem !== undefined) throw new OciError('DIGEST_INVALID', problem);
  return value as Digest;
}

export function isDigestString(value: string): boolean {
  return digestProblem(value) === undefined;
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  // A Digest only exists after parseDigest, so the prefix is one of ours.
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function computeDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest;
}
