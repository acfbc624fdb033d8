import { isDigestString, parseDigest, type Digest } from '../oci/index.js';
import { LayoutError } from './errors.js';

/** The name of the summary inside every layout regmirror writes. */
export const SUMMARY_FILE = 'regmirror-export.json';
export const SUMMARY_FORMAT = 'regmirror-export/v1';

export interface ExportedImage {
  /** The full reference, as in index.json's `org.opencontainers.image.ref.name`. */
  readonly reference: string;
  readonly digest: string;
  readonly mediaType: string;
  /** `os/arch[/variant]` of every image manifest that travelled (empty when the config did not say). */
  readonly platforms: readonly string[];
  /** Bytes of every manifest, config and layer of the selected platforms, carried here or earlier. */
  readonly size: number;
  /**
   * Child manifests of an index left out by the platform filter: absent from the layout on purpose.
   * Import accepts exactly these as missing; the index itself travels intact (same digest).
   */
  readonly filtered: readonly string[];
}

/**
 * `regmirror-export.json`: what an export holds and what it assumes the other side already has.
 * `carried` are the blobs in this layout; `baseline` the blobs earlier exports carried (left out
 * here by `--since`); the next `--since` takes both as known.
 */
export interface ExportSummary {
  readonly format: typeof SUMMARY_FORMAT;
  /** Unique per export: `--since` names its predecessor by it. */
  readonly id: string;
  readonly createdAt: string;
  readonly regmirror: string;
  /** The export this one is incremental to, if any. */
  readonly since: { readonly id: string; readonly createdAt: string } | null;
  /** The `--platform` filter given (empty: every platform). */
  readonly platforms: readonly string[];
  readonly images: readonly ExportedImage[];
  readonly carried: { readonly blobs: number; readonly bytes: number; readonly digests: readonly string[] };
  readonly baseline: readonly string[];
}

/** Reads a summary (a `--since` file, or the one inside a layout); LayoutError when it is not one. */
export function parseSummary(bytes: Buffer, where: string): ExportSummary {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new LayoutError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const v = value as Partial<ExportSummary> | null;
  const bad = (why: string) => new LayoutError(`${where} is not a regmirror export summary: ${why}`);
  if (typeof v !== 'object' || v === null || v.format !== SUMMARY_FORMAT) throw bad(`"format" is not "${SUMMARY_FORMAT}"`);
  if (typeof v.id !== 'string' || typeof v.createdAt !== 'string') throw bad('"id" and "createdAt" must be strings');
  if (!Array.isArray(v.images)) throw bad('"images" must be a list');
  for (const image of v.images as unknown[]) {
    const i = image as Partial<ExportedImage> | null;
    if (typeof i !== 'object' || i === null || typeof i.reference !== 'string' || typeof i.digest !== 'string' || !Array.isArray(i.filtered)) {
      throw bad('every image needs "reference", "digest" and "filtered"');
    }
    if (!digests(i.filtered)) throw bad(`"filtered" of ${i.reference} must list digests`);
  }
  if (typeof v.carried !== 'object' || v.carried === null || !digests(v.carried.digests)) throw bad('"carried.digests" must list digests');
  if (!digests(v.baseline)) throw bad('"baseline" must list digests');
  return v as ExportSummary;
}

/** What the other side holds once it imported `previous` (and everything before it). */
export function knownAfter(previous: ExportSummary): Set<Digest> {
  return new Set([...previous.baseline, ...previous.carried.digests].map((d) => parseDigest(d)));
}

function digests(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((d) => typeof d === 'string' && isDigestString(d));
}
