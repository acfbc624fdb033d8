/** Media types a pull mirror meets (registry-protocol.md §2.1). */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  json: 'application/json',
} as const;

/**
 * What the mirror asks upstream for: the four modern types, a fixed set so a tag's answer
 * does not depend on which client asked first (§2.3). Schema1 is left out on purpose (§2.5):
 * asking for it invites Docker Hub to convert, and its digests are not sha256(body).
 */
export const MANIFEST_MEDIA_TYPES: readonly string[] = Object.freeze([
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
]);

/** distribution's `maxManifestBodySize` (§1.4); containerd's own cap is slightly larger. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** 'a/b; charset=x' → 'a/b', lowercase (media types are case-insensitive, RFC 9110 §8.3.1). */
export function stripMediaTypeParams(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/**
 * Accept as a set (§2.2): dockerd sends one header line per type, Node joins repeated lines
 * with ', ', and nobody relies on q-values, so parameters are dropped and order is kept only
 * for readability of logs.
 */
export function parseAccept(header: string | readonly string[] | undefined): string[] {
  if (header === undefined) return [];
  const lines = typeof header === 'string' ? [header] : header;
  const seen = new Set<string>();
  for (const line of lines) {
    for (const part of line.split(',')) {
      const type = stripMediaTypeParams(part);
      if (type !== '') seen.add(type);
    }
  }
  return [...seen];
}

/** An absent Accept means "anything" (RFC 9110 §12.5.1). */
export function acceptsMediaType(accept: readonly string[], mediaType: string): boolean {
  if (accept.length === 0) return true;
  const wanted = stripMediaTypeParams(mediaType);
  const slash = wanted.indexOf('/');
  const range = slash === -1 ? undefined : `${wanted.slice(0, slash)}/*`;
  return accept.some((a) => a === '*/*' || a === wanted || a === range);
}

export function isIndexMediaType(mediaType: string): boolean {
  const type = stripMediaTypeParams(mediaType);
  return type === MediaType.ociIndex || type === MediaType.dockerManifestList;
}
