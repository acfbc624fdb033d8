/** A blob Range request resolved against the blob size (RFC 9110 §14, registry-protocol.md §1.5). */
export type RangeRequest =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number /* inclusive */ }
  | { readonly kind: 'unsatisfiable' };

const FULL: RangeRequest = Object.freeze({ kind: 'full' });
const UNSATISFIABLE: RangeRequest = Object.freeze({ kind: 'unsatisfiable' });

// One range-spec: int-range "first-[last]" or suffix-range "-length". The unit is
// case-insensitive (RFC 9110 §14.1); whitespace is allowed only around the list.
const SPEC = /^bytes=[ \t]*(?:(\d+)-(\d*)|-(\d+))[ \t]*$/i;

/**
 * Anything we cannot or will not honour precisely is answered with the whole blob, which
 * RFC 9110 §14.2 allows: that covers garbage, other units, and multi-range requests (only
 * containers/image partial pulls send those, and they cope with 200). Resume requests
 * `bytes=N-` always get an exact range, because dockerd and containers/image reject a 200.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return FULL;
  const match = SPEC.exec(header.trim());
  if (match === null) return FULL;
  const [, first, last, suffix] = match;
  if (suffix !== undefined) {
    const length = Number(suffix);
    if (length === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
  }
  // Digits only, so Number() cannot fail; a huge value just becomes ≥ size or Infinity.
  const start = Number(first);
  const end = last === undefined || last === '' ? Infinity : Number(last);
  // last < first makes the range-spec invalid, and an invalid Range is ignored (§14.2).
  if (end < start) return FULL;
  if (start >= size) return UNSATISFIABLE;
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/** `Content-Range` of a 206. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}

/** `Content-Range` of a 416 (RFC 9110 §15.5.17). */
export function unsatisfiedContentRange(size: number): string {
  return `bytes */${size}`;
}
