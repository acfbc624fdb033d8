import { parseDigest, type Digest } from './digest.js';
import { OciError, quoteInput } from './errors.js';

export type RepositoryName = string & { readonly __brand: 'RepositoryName' };
export type Tag = string & { readonly __brand: 'Tag' };
export type Reference = { readonly kind: 'tag'; readonly tag: Tag } | { readonly kind: 'digest'; readonly digest: Digest };

// distribution-spec, anchored (registry-protocol.md §1.3). A separator is never alphanumeric,
// so each repetition starts at a fixed character class: no catastrophic backtracking.
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
/** distribution/reference `RepositoryNameTotalLengthMax`. */
export const MAX_NAME_LENGTH = 255;

const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function parseRepositoryName(value: string): RepositoryName {
  if (value === '') throw new OciError('NAME_INVALID', 'repository name is empty');
  if (value.length > MAX_NAME_LENGTH) {
    throw new OciError('NAME_INVALID', `repository name is ${value.length} characters long, at most ${MAX_NAME_LENGTH} allowed`);
  }
  if (!NAME.test(value)) {
    const why = /[A-Z]/.test(value)
      ? 'it must be lowercase'
      : 'components must be [a-z0-9] joined by ".", "_", "__" or dashes, separated by single "/"';
    throw new OciError('NAME_INVALID', `invalid repository name ${quoteInput(value)}: ${why}`);
  }
  return value as RepositoryName;
}

/**
 * Docker Hub's official images: a one-segment name is `library/<name>` there, and the registry
 * does not expand it itself (registry-protocol.md §3.6). Applies to client names and to the
 * repository globs of pins and sync entries alike, so `alpine` means one thing everywhere. A
 * glob holding `**` can match names of any depth (`**` is everything, not only `library/`), so
 * it is left as written; a `*` stays inside one segment, so `ngin*` reads as `library/ngin*`.
 */
export function officialName(name: string, library: boolean): string {
  return library && name !== '' && !name.includes('/') && !name.includes('**') ? `library/${name}` : name;
}

export function parseTag(value: string): Tag {
  if (!TAG.test(value)) {
    throw new OciError('TAG_INVALID', `invalid tag ${quoteInput(value)}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`);
  }
  return value as Tag;
}

/** A `<tag-or-digest>`: a `:` makes it a digest, since tags cannot contain one (§1.3). */
export function parseReference(value: string): Reference {
  return value.includes(':') ? { kind: 'digest', digest: parseDigest(value) } : { kind: 'tag', tag: parseTag(value) };
}

export function referenceString(ref: Reference): string {
  return ref.kind === 'tag' ? ref.tag : ref.digest;
}
