import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestAlgorithm, type Digest } from '../oci/index.js';
import { LayoutError } from './errors.js';
import type { ImportPlan, PlannedBlob } from './import-plan.js';
import type { ImportTarget } from './import-target.js';
import type { LayoutFiles } from './layout-files.js';
import type { TransferProgress } from './progress.js';
import type { ByteCount } from './exporter.js';

export interface ImportedImage {
  readonly reference: string;
  readonly digest: string;
  /** Blobs of this image that this run copied into the cache. */
  readonly blobs: number;
  readonly bytes: number;
}

export interface ImportResult {
  readonly kind: ImportPlan['kind'];
  readonly images: readonly ImportedImage[];
  /** Blobs copied into the cache. */
  readonly written: ByteCount;
  /** Blobs the cache held already (an earlier import, an interrupted run, a pull). */
  readonly skipped: ByteCount;
  readonly pinned: readonly string[];
}

/** What the operator sees while the layout is checked before anything is copied. */
export const CHECKING = 'checking the layout';

/**
 * Two passes. First every blob the cache lacks is hashed against its name, and every reference
 * left for the cache to have is looked up: bad input stops here, before the cache changes. Then,
 * image by image, its missing blobs are copied (the cache verifies them again as it writes) and
 * the image is committed, which makes its tag visible. A re-run skips what the cache holds.
 */
export async function runImport(files: LayoutFiles, plan: ImportPlan, target: ImportTarget, options: { pin: boolean }, progress?: TransferProgress): Promise<ImportResult> {
  const all = [...new Set([...plan.blobs.keys(), ...plan.external.keys()])];
  const missing = new Set(await target.missing(all));
  for (const [digest, why] of plan.external) if (missing.has(digest)) throw new LayoutError(why);

  const toCopy = [...plan.blobs.values()].filter((b) => missing.has(b.digest));
  progress?.imageStarted(CHECKING, toCopy.length, toCopy.reduce((n, b) => n + b.size, 0));
  for (const blob of toCopy) {
    await checkBlob(files, blob);
    progress?.blobDone(CHECKING, blob.size);
  }
  progress?.imageFinished(CHECKING, true);

  const written = { blobs: 0, bytes: 0 };
  const skipped = { blobs: 0, bytes: 0 };
  for (const b of plan.blobs.values()) {
    if (missing.has(b.digest)) continue;
    skipped.blobs++;
    skipped.bytes += b.size;
  }
  const copied = new Set<Digest>();
  const images: ImportedImage[] = [];
  const pinned = new Set<string>();
  for (const image of plan.images) {
    const mine = image.digests.flatMap((d) => {
      const b = plan.blobs.get(d);
      return b !== undefined && missing.has(d) && !copied.has(d) ? [b] : [];
    });
    const bytes = mine.reduce((n, b) => n + b.size, 0);
    progress?.imageStarted(image.reference, mine.length, bytes);
    try {
      for (const blob of mine) {
        copied.add(blob.digest);
        const body = openBlob(files, blob);
        try {
          await target.putBlob(blob.digest, blob.size, body);
        } finally {
          body.destroy();
        }
        written.blobs++;
        written.bytes += blob.size;
        progress?.blobDone(image.reference, blob.size);
      }
      const { upstream, repository, tag } = image.ref;
      await target.commit({ upstream, repository, tag, digest: image.digest, mediaType: image.mediaType, filtered: image.filtered, pin: options.pin });
    } catch (err) {
      progress?.imageFinished(image.reference, false);
      throw err;
    }
    if (options.pin) pinned.add(`${image.ref.upstream}/${image.ref.repository}`);
    progress?.imageFinished(image.reference, true);
    images.push({ reference: image.reference, digest: image.digest, blobs: mine.length, bytes });
  }
  return { kind: plan.kind, images, written, skipped, pinned: [...pinned].sort() };
}

function openBlob(files: LayoutFiles, blob: PlannedBlob): Readable {
  return blob.bytes !== undefined ? Readable.from([blob.bytes]) : files.open(blob.file ?? '');
}

/** Hashes one blob of the input against its name and size. */
async function checkBlob(files: LayoutFiles, blob: PlannedBlob): Promise<void> {
  const hash = createHash(digestAlgorithm(blob.digest));
  let size: number;
  if (blob.bytes !== undefined) {
    hash.update(blob.bytes);
    size = blob.bytes.length;
  } else size = await files.hash(blob.file ?? '', hash);
  const actual = `${digestAlgorithm(blob.digest)}:${hash.digest('hex')}`;
  const what = blob.file ?? blob.digest;
  if (size !== blob.size) throw new LayoutError(`${what} is ${size} bytes, ${blob.size} expected`);
  if (actual !== blob.digest) throw new LayoutError(`${what} does not match its name ${blob.digest}: its bytes hash to ${actual}`);
}
