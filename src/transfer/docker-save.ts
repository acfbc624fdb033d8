import { computeDigest, MediaType, parseDigest, type Digest } from '../oci/index.js';
import { LayoutError } from './errors.js';
import { formatImageRef, parseImageRef, type UpstreamNames } from './image-ref.js';
import { jsonObject, type ImportImage, type ImportPlan, type PlannedBlob } from './import-plan.js';
import { cleanName, type LayoutFiles } from './layout-files.js';

/** The uncompressed Docker layer type: `docker save` keeps layers as plain tars. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

const MAX_JSON = 16 * 1024 * 1024;

/**
 * A `docker save` archive (manifest.json + config + layer tars) as registry content. The archive
 * keeps no registry manifest and no compressed layer, so a Docker schema2 manifest is written here
 * over the uncompressed layers: the config digest (the image ID) and each layer digest (its diff ID)
 * are the archive's own, checked against the config's rootfs.diff_ids; the manifest digest is new,
 * so such images are pulled by tag. (An archive from Docker 25+ is an OCI layout and goes that way.)
 */
export async function readDockerSave(files: LayoutFiles, names: UpstreamNames): Promise<ImportPlan> {
  const raw = await files.read('manifest.json', MAX_JSON);
  let entries: unknown;
  try {
    entries = JSON.parse((raw ?? Buffer.alloc(0)).toString('utf8'));
  } catch (err) {
    throw new LayoutError(`manifest.json is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(entries) || entries.length === 0) throw new LayoutError('manifest.json of a docker save archive must be a non-empty list');
  const blobs = new Map<Digest, PlannedBlob>();
  const images: ImportImage[] = [];
  for (const [i, value] of entries.entries()) {
    const where = `manifest.json entry ${i}`;
    const entry = value as { Config?: unknown; RepoTags?: unknown; Layers?: unknown } | null;
    if (typeof entry?.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l): l is string => typeof l === 'string')) {
      throw new LayoutError(`${where} needs "Config" and "Layers"`);
    }
    const configFile = cleanName(entry.Config);
    const config = await files.read(configFile, MAX_JSON);
    if (config === undefined) throw new LayoutError(`${where} names the config ${configFile}, which is not in the archive`);
    const configDigest = computeDigest(config);
    // The name says the digest (`<hex>.json`, or `blobs/sha256/<hex>`): the bytes must agree.
    const named = /([0-9a-f]{64})(?:\.json)?$/.exec(configFile)?.[1];
    if (named !== undefined && `sha256:${named}` !== configDigest) throw new LayoutError(`the config ${configFile} does not match its name: its bytes hash to ${configDigest}`);
    const diffIds = jsonObject(config, configFile)['rootfs'] as { diff_ids?: unknown } | undefined;
    const ids = Array.isArray(diffIds?.diff_ids) ? (diffIds.diff_ids as unknown[]) : [];
    if (ids.length !== entry.Layers.length) throw new LayoutError(`${where} lists ${entry.Layers.length} layers, its config ${ids.length} diff IDs`);
    blobs.set(configDigest, { digest: configDigest, size: config.length, file: undefined, bytes: config });
    const layers: Array<{ digest: Digest; size: number }> = [];
    for (const [j, layerName] of entry.Layers.entries()) {
      const file = cleanName(layerName);
      const size = await files.size(file);
      if (size === undefined) throw new LayoutError(`${where} names the layer ${file}, which is not in the archive`);
      let digest: Digest;
      try {
        digest = parseDigest(String(ids[j]));
      } catch {
        throw new LayoutError(`${configFile}: diff ID ${j} is not a digest`);
      }
      // The layer's bytes are hashed before anything is copied; they must hash to the diff ID.
      blobs.set(digest, { digest, size, file, bytes: undefined });
      layers.push({ digest, size });
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, size: config.length, digest: configDigest },
        layers: layers.map((l) => ({ mediaType: DOCKER_LAYER_TAR, size: l.size, digest: l.digest })),
      }),
    );
    const digest = computeDigest(manifest);
    blobs.set(digest, { digest, size: manifest.length, file: undefined, bytes: manifest });
    const tags = Array.isArray(entry.RepoTags) ? entry.RepoTags : [];
    if (tags.length === 0) throw new LayoutError(`${where} has no RepoTags: nothing names the image (docker save it by name:tag)`);
    for (const tag of tags) {
      let ref;
      try {
        ref = parseImageRef(String(tag), names);
      } catch (err) {
        throw new LayoutError(`${where}: ${(err as Error).message}`);
      }
      images.push({
        ref,
        reference: formatImageRef(ref),
        digest,
        mediaType: MediaType.dockerManifest,
        size: manifest.length,
        digests: [digest, configDigest, ...layers.map((l) => l.digest)],
        filtered: [],
      });
    }
  }
  return { images, blobs, external: new Map(), kind: 'docker-save' };
}
