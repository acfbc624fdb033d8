import { verify, type KeyObject } from 'node:crypto';
import { COSIGN_FALLBACK_TAGS, fallbackTag, type Digest } from '../oci/index.js';

/** cosign's key-based signature format (the "simple signing" payload and its annotation). */
export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const SIG = COSIGN_FALLBACK_TAGS.find((t) => t.suffix === 'sig')!;
/** The artifactType cosign gives a signature stored as an OCI 1.1 referrer. */
export const COSIGN_SIGNATURE_ARTIFACT = SIG.artifactType;
/** cosign's tag schema (oci/referrers.ts): `sha256-<hex>.sig` (signatures), `.att` (attestations), `.sbom`. */
export const COSIGN_TAG = new RegExp(`^sha256-[a-f0-9]{64}\\.(${COSIGN_FALLBACK_TAGS.map((t) => t.suffix).join('|')})$`);

/** The tag under which cosign stores the signatures of `digest` when the registry has no referrers API. */
export function signatureTag(digest: Digest): string {
  return fallbackTag(digest, SIG.suffix);
}

/** One signature layer of a cosign signature manifest: the payload's digest and the base64 signature. */
export interface SignatureLayer {
  readonly payload: Digest;
  readonly signature: Buffer;
}

/** The simple-signing layers of a signature manifest that carry a signature annotation. */
export function signatureLayers(manifest: Buffer): SignatureLayer[] {
  let doc: unknown;
  try {
    doc = JSON.parse(manifest.toString('utf8'));
  } catch {
    return [];
  }
  const layers = (doc as { layers?: unknown }).layers;
  if (!Array.isArray(layers)) return [];
  return layers.flatMap((layer: unknown) => {
    const { mediaType, digest, annotations } = (typeof layer === 'object' && layer !== null ? layer : {}) as Record<string, unknown>;
    const signature = (annotations as Record<string, unknown> | undefined)?.[SIGNATURE_ANNOTATION];
    if (mediaType !== SIMPLE_SIGNING || typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest) || typeof signature !== 'string') return [];
    return [{ payload: digest as Digest, signature: Buffer.from(signature, 'base64') }];
  });
}

/**
 * Whether `payload` is a cosign signature of `subject` by one of `keys`: the signature verifies over
 * the payload's exact bytes (OpenSSL through node:crypto: ECDSA and RSA with SHA-256, Ed25519), and
 * the payload names `subject` as the signed manifest digest, so a valid signature of another image
 * cannot be replayed onto this one.
 */
export function verifiesFor(subject: Digest, payload: Buffer, signature: Buffer, keys: readonly KeyObject[]): boolean {
  if (signedDigest(payload) !== subject) return false;
  return keys.some((key) => {
    try {
      return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, signature);
    } catch {
      return false;
    }
  });
}

function signedDigest(payload: Buffer): string | undefined {
  try {
    const doc = JSON.parse(payload.toString('utf8')) as { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } };
    if (doc.critical?.type !== 'cosign container image signature') return undefined;
    const digest = doc.critical.image?.['docker-manifest-digest'];
    return typeof digest === 'string' ? digest : undefined;
  } catch {
    return undefined;
  }
}
