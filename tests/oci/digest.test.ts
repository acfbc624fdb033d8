import t from 'tap';
import { createHash } from 'node:crypto';
import { computeDigest, digestAlgorithm, digestHex, isDigestString, parseDigest } from '../../src/oci/index.js';

const hex64 = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);
const hex128 = '0123456789abcdef'.repeat(8);

const valid: [string, 'sha256' | 'sha512', string][] = [
  [`sha256:${hex64}`, 'sha256', hex64],
  [`sha256:${'0'.repeat(64)}`, 'sha256', '0'.repeat(64)],
  [`sha512:${hex128}`, 'sha512', hex128],
];

const invalid: [string, string, RegExp][] = [
  ['empty', '', /not a digest/],
  ['no colon', hex64, /not a digest/],
  ['empty encoded', 'sha256:', /not a digest/],
  ['empty algorithm', `:${hex64}`, /not a digest/],
  ['uppercase hex', `sha256:${hex64.toUpperCase()}`, /lowercase/],
  ['mixed case hex', `sha256:${'A'.repeat(64)}`.replace('A', 'a'), /lowercase/],
  ['short hex', `sha256:${hex64.slice(1)}`, /64 hex characters, got 63/],
  ['long hex', `sha256:${hex64}0`, /64 hex characters, got 65/],
  ['sha512 short', `sha512:${hex64}`, /128 hex characters, got 64/],
  ['md5', 'md5:d41d8cd98f00b204e9800998ecf8427e', /algorithm "md5" is not supported/],
  ['sha384 (unregistered in OCI)', `sha384:${'a'.repeat(96)}`, /not supported/],
  ['blake3', `blake3:${hex64}`, /not supported/],
  ['multi-part algorithm in grammar', `sha256+b64u:${hex64}`, /not supported/],
  ['uppercase algorithm', `SHA256:${hex64}`, /not a digest/],
  ['non-hex encoded in grammar', `sha256:${'g'.repeat(64)}`, /must be hex/],
  ['base64 chars', `sha256:${'a'.repeat(63)}=`, /must be hex/],
  ['bad encoded char', `sha256:${hex64.slice(1)}/`, /not a digest/],
  ['leading space', ` sha256:${hex64}`, /not a digest/],
  ['trailing newline', `sha256:${hex64}\n`, /not a digest/],
  ['double colon', `sha256::${hex64}`, /not a digest/],
  ['separator at end of algorithm', `sha256-:${hex64}`, /not a digest/],
  ['too long', `sha256:${'a'.repeat(300)}`, /too long/],
];

t.test('valid digests', async (t) => {
  for (const [value, algorithm, hex] of valid) {
    const d = parseDigest(value);
    t.equal(d, value);
    t.equal(isDigestString(value), true);
    t.equal(digestAlgorithm(d), algorithm);
    t.equal(digestHex(d), hex);
  }
});

t.test('invalid digests throw DIGEST_INVALID saying why', async (t) => {
  for (const [label, value, message] of invalid) {
    t.throws(() => parseDigest(value), { name: 'OciError', code: 'DIGEST_INVALID', status: 400, message }, label);
    t.equal(isDigestString(value), false, label);
  }
});

t.test('long input is not echoed in full', async (t) => {
  const value = `md5:${'a'.repeat(200)}`;
  t.throws(() => parseDigest(value), { code: 'DIGEST_INVALID', message: /^digest algorithm "md5" is not supported/ });
  t.throws(() => parseDigest(`${value}!`), { code: 'DIGEST_INVALID', message: /^.{20,120}$/s });
});

t.test('computeDigest', async (t) => {
  const bytes = new TextEncoder().encode('hello\n');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  t.equal(computeDigest(bytes), `sha256:${sha256}`);
  t.equal(computeDigest(bytes), 'sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
  t.equal(computeDigest(new Uint8Array()), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const d512 = computeDigest(bytes, 'sha512');
  t.equal(d512, `sha512:${createHash('sha512').update(bytes).digest('hex')}`);
  t.equal(isDigestString(d512), true);
});
