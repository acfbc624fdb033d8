import { parseDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';
import { MAX_MANIFEST_BYTES, MediaType, stripMediaTypeParams } from './media-types.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly artifactType?: string;
  readonly urls?: readonly string[];
}

export interface ParsedManifest {
  /** The `mediaType` field, else the content type. */
  readonly mediaType: string;
  readonly kind: 'index' | 'image' | 'schema1' | 'unknown';
  /** Index children (empty for images). */
  readonly manifests: readonly Descriptor[];
  readonly config: Descriptor | undefined;
  readonly layers: readonly Descriptor[];
  readonly subject: Descriptor | undefined;
}

type Kind = ParsedManifest['kind'];
type Json = Record<string, unknown>;

const KIND_OF_TYPE: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  [MediaType.ociIndex, 'index'],
  [MediaType.dockerManifestList, 'index'],
  [MediaType.ociManifest, 'image'],
  [MediaType.dockerManifest, 'image'],
  [MediaType.dockerSchema1, 'schema1'],
  [MediaType.dockerSchema1Signed, 'schema1'],
]);

/**
 * Content types that say nothing about which manifest this is. Old registries serve schema1
 * (and some OCI manifests) as application/json; the `mediaType` field then decides.
 */
const GENERIC_CONTENT_TYPES: ReadonlySet<string> = new Set(['', MediaType.json]);

function invalid(message: string, cause?: unknown): OciError {
  return new OciError('MANIFEST_INVALID', message, cause === undefined ? {} : { cause });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(obj: Json, key: string, where: string): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${where}.${key} must be a string`);
  return value;
}

function parsePlatform(value: unknown, where: string): Platform {
  if (!isObject(value)) throw invalid(`${where} must be an object`);
  const { os, architecture } = value;
  if (typeof os !== 'string' || typeof architecture !== 'string') {
    throw invalid(`${where} must have string os and architecture`);
  }
  const variant = optionalString(value, 'variant', where);
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor object`);
  const { mediaType, digest, size } = value;
  // image-spec descriptor.md: mediaType, digest and size are all REQUIRED.
  if (typeof mediaType !== 'string') throw invalid(`${where}.mediaType must be a string`);
  if (typeof digest !== 'string') throw invalid(`${where}.digest must be a string`);
  let parsed: Digest;
  try {
    parsed = parseDigest(digest);
  } catch (err) {
    throw invalid(`${where}.digest: ${(err as Error).message}`, err);
  }
  // Sizes are compared with byte counts: a float or unsafe integer could never match exactly.
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${where}.size must be a non-negative integer`);
  }
  const descriptor: { -readonly [K in keyof Descriptor]: Descriptor[K] } = { mediaType, digest: parsed, size };
  if (value['platform'] !== undefined) descriptor.platform = parsePlatform(value['platform'], `${where}.platform`);
  const artifactType = optionalString(value, 'artifactType', where);
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  const urls = value['urls'];
  if (urls !== undefined) {
    if (!Array.isArray(urls) || !urls.every((u): u is string => typeof u === 'string')) {
      throw invalid(`${where}.urls must be a list of strings`);
    }
    descriptor.urls = urls;
  }
  return descriptor;
}

function descriptorList(obj: Json, key: string, required: boolean): Descriptor[] {
  const value = obj[key];
  if (value === undefined && !required) return [];
  if (!Array.isArray(value)) throw invalid(`${key} must be a list of descriptors`);
  return value.map((item, i) => parseDescriptor(item, `${key}[${i}]`));
}

function optionalDescriptor(obj: Json, key: string, required: boolean): Descriptor | undefined {
  const value = obj[key];
  if (value === undefined && !required) return undefined;
  return parseDescriptor(value, key);
}

/** For a manifest whose type is generic or unknown: what its shape says it is. */
function kindFromShape(obj: Json): Kind {
  if (obj['schemaVersion'] === 1) return 'schema1';
  if (obj['schemaVersion'] === 2 && Array.isArray(obj['manifests'])) return 'index';
  if (obj['schemaVersion'] === 2 && isObject(obj['config'])) return 'image';
  return 'unknown';
}

function decodeJson(bytes: Uint8Array): Json {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw invalid(`manifest is ${bytes.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw invalid(`manifest is not valid UTF-8 JSON: ${(err as Error).message}`, err);
  }
  if (!isObject(value)) throw invalid('manifest is not a JSON object');
  return value;
}

/**
 * Reads what the mirror needs from manifest bytes and checks what clients would reject. It
 * never re-serialises: the caller keeps and serves the original bytes (§2.4).
 */
export function parseManifest(bytes: Uint8Array, contentType: string): ParsedManifest {
  const obj = decodeJson(bytes);
  const header = stripMediaTypeParams(contentType);
  const field = obj['mediaType'];
  if (field !== undefined && (typeof field !== 'string' || field === '')) {
    throw invalid('the mediaType field must be a non-empty string');
  }
  // Clients SHOULD reject a Content-Type that differs from the mediaType field (§1.4).
  if (field !== undefined && !GENERIC_CONTENT_TYPES.has(header) && stripMediaTypeParams(field) !== header) {
    throw invalid(`the mediaType field ${JSON.stringify(field)} differs from the content type ${JSON.stringify(header)}`);
  }
  const mediaType = field ?? header;
  if (mediaType === '') throw invalid('manifest has neither a mediaType field nor a content type');
  const kind = KIND_OF_TYPE.get(stripMediaTypeParams(mediaType)) ?? kindFromShape(obj);

  const schemaVersion = obj['schemaVersion'];
  if (kind === 'schema1') {
    if (schemaVersion !== 1) throw invalid('a schema1 manifest must have schemaVersion 1');
    // Schema1 carries no descriptors (fsLayers have no sizes); it is passed through as is (§2.5).
    return { mediaType, kind, manifests: [], config: undefined, layers: [], subject: undefined };
  }
  if ((kind === 'index' || kind === 'image') && schemaVersion !== 2) {
    throw invalid(`an ${kind === 'index' ? 'index' : 'image manifest'} must have schemaVersion 2`);
  }
  if (kind === 'index') {
    const manifests = descriptorList(obj, 'manifests', true);
    return { mediaType, kind, manifests, config: undefined, layers: [], subject: optionalDescriptor(obj, 'subject', false) };
  }
  if (kind === 'image') {
    const config = optionalDescriptor(obj, 'config', true);
    const layers = descriptorList(obj, 'layers', true);
    return { mediaType, kind, manifests: [], config, layers, subject: optionalDescriptor(obj, 'subject', false) };
  }
  // An unknown type (an artifact format we do not know): read whatever descriptors it has.
  return {
    mediaType,
    kind,
    manifests: descriptorList(obj, 'manifests', false),
    config: optionalDescriptor(obj, 'config', false),
    layers: descriptorList(obj, 'layers', false),
    subject: optionalDescriptor(obj, 'subject', false),
  };
}

/**
 * What a manifest references, in walk order: an index's manifests, then an image's config and
 * layers. The subject is no child: a referrer points back at the image it describes, and keeping
 * the referrer must not keep that image.
 */
export function childDescriptors(manifest: ParsedManifest): Descriptor[] {
  return [...manifest.manifests, ...(manifest.config ? [manifest.config] : []), ...manifest.layers];
}
