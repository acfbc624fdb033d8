import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PolicyRule } from '../config/index.js';
import { MANIFEST_MEDIA_TYPES, OciError, parseManifest, parseTag, RepositoryGlob, type Digest, type ParsedManifest, type PageQuery, type Reference } from '../oci/index.js';
import type { BlobReply, ManifestReply, ReferrersReply, RegistryReader, RepoRef, TagsReply } from '../mirror/index.js';
import type { Logger } from 'pino';
import { loadPublicKeys } from './keys.js';
import { COSIGN_SIGNATURE_ARTIFACT, COSIGN_TAG, signatureLayers, signatureTag, verifiesFor } from './cosign.js';

/** How a manifest request fared against the rules that apply to its repository. */
export type PolicyOutcome = 'allowed' | 'refused' | 'warned' | 'exempt';

export interface PolicyObserver {
  policyDecision(outcome: PolicyOutcome): void;
}

/** What a refused manifest was refused for; 403 DENIED naming the rule, as clients show it. */
export class PolicyRefusal extends OciError {
  constructor(
    readonly rule: string,
    readonly reason: string,
  ) {
    super('DENIED', `refused by policy rule ${rule}: ${reason}`, { status: 403 });
  }
}

interface Compiled {
  readonly name: string;
  readonly enforce: boolean;
  readonly repositories: readonly { readonly upstream: string; readonly glob: RepositoryGlob }[];
  readonly digests: ReadonlySet<string>;
  readonly tags: readonly RegExp[];
  readonly requiresSignature: boolean;
  keys: readonly KeyObject[];
}

interface Decision {
  /** A signature, attestation or SBOM: no filesystem layer, nothing to run. */
  readonly exempt: boolean;
  readonly refusal?: PolicyRefusal | undefined;
  /** What a rule in mode warn would have refused. */
  readonly warned?: PolicyRefusal | undefined;
}

/** Signature payloads are a few hundred bytes; anything far larger is not one. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const REMEMBERED = 100_000;

/**
 * The policy gate: serves a manifest only when every rule over its repository lets it through (not
 * denied; signed by a rule's key when the rule requires it), and no blob of a refused image for that
 * repository. Wraps the mirror as its RegistryReader, and finds signatures through the same mirror
 * (the `sha256-<hex>.sig` tag and the referrers API), so they are pulled, verified and cached like
 * anything else. Signature artifacts themselves pass: verifiers must be able to fetch them here.
 */
export class PolicyGate implements RegistryReader {
  private readonly rules: Compiled[];
  /** Each digest's verdict per repository, for the tag TTL (a signature may be pushed later). */
  private readonly decisions: LRUCache<string, Decision>;
  private readonly byRepository = new LRUCache<string, Compiled[]>({ max: 10_000 });
  /** Children of an index that passed (they pass with it) or was refused (refused with it). */
  private readonly inherited = new LRUCache<string, 'allowed' | 'refused'>({ max: REMEMBERED });
  /** Blobs of refused manifests per repository, unless an allowed manifest there uses them too. */
  private readonly blobs = new LRUCache<string, 'allowed' | 'refused'>({ max: REMEMBERED });

  constructor(
    private readonly inner: RegistryReader,
    private readonly config: readonly PolicyRule[],
    private readonly deps: { readonly observer: PolicyObserver; readonly logger: Logger; readonly ttlMs: number },
  ) {
    this.rules = config.map((rule) => ({
      name: rule.name,
      enforce: rule.mode === 'enforce',
      repositories: rule.repositories.map((p) => ({ upstream: p.upstream, glob: new RepositoryGlob(p.repository) })),
      digests: new Set(rule.deny.filter((d) => d.includes(':'))),
      tags: rule.deny.filter((d) => !d.includes(':')).map((d) => new RegExp(`^${d.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`)),
      requiresSignature: rule.requireSignature !== undefined,
      keys: [],
    }));
    this.decisions = new LRUCache({ max: REMEMBERED, ttl: Math.max(1, deps.ttlMs) });
  }

  /** Before serving: the rules' public keys (a missing or unusable one stops start-up, naming it). */
  async open(): Promise<void> {
    for (const [i, rule] of this.config.entries()) {
      const compiled = this.rules[i];
      if (rule.requireSignature !== undefined && compiled !== undefined) compiled.keys = await loadPublicKeys(rule.requireSignature.keys, `policy[${i}].requireSignature.keys`);
    }
  }

  async manifest(ref: RepoRef, reference: Reference, accept: readonly string[]): Promise<ManifestReply> {
    const reply = await this.inner.manifest(ref, reference, accept);
    await this.check(ref, reference, reply);
    return reply;
  }

  async manifestHead(ref: RepoRef, reference: Reference, accept: readonly string[]): Promise<ManifestReply> {
    const reply = await this.inner.manifestHead(ref, reference, accept);
    await this.check(ref, reference, reply);
    return reply;
  }

  async blob(ref: RepoRef, digest: Digest, range: string | undefined, signal?: AbortSignal): Promise<BlobReply> {
    this.checkBlob(ref, digest);
    return this.inner.blob(ref, digest, range, signal);
  }

  async blobHead(ref: RepoRef, digest: Digest, signal?: AbortSignal): Promise<{ size: number }> {
    this.checkBlob(ref, digest);
    return this.inner.blobHead(ref, digest, signal);
  }

  tags(ref: RepoRef, query: PageQuery, signal?: AbortSignal): Promise<TagsReply> {
    return this.inner.tags(ref, query, signal);
  }

  referrers(ref: RepoRef, digest: Digest, artifactType: string | undefined, page: string): Promise<ReferrersReply> {
    return this.inner.referrers(ref, digest, artifactType, page);
  }

  private applicable(ref: RepoRef): Compiled[] {
    const k = `${ref.upstream}\u0000${ref.name}`;
    let rules = this.byRepository.get(k);
    if (rules === undefined) {
      rules = this.rules.filter((r) => r.repositories.some((p) => p.upstream === ref.upstream && p.glob.matches(ref.name)));
      this.byRepository.set(k, rules);
    }
    return rules;
  }

  private checkBlob(ref: RepoRef, digest: Digest): void {
    const state = this.blobs.get(key(ref, digest));
    if (state !== 'refused') return;
    const rule = this.applicable(ref).find((r) => r.enforce);
    if (rule !== undefined) throw new PolicyRefusal(rule.name, `blob ${digest} belongs to a refused image`);
  }

  private async check(ref: RepoRef, reference: Reference, reply: ManifestReply): Promise<void> {
    const rules = this.applicable(ref);
    if (rules.length === 0) return;
    const tag = reference.kind === 'tag' ? reference.tag : undefined;
    const { observer, logger } = this.deps;
    if (tag !== undefined && COSIGN_TAG.test(tag)) return observer.policyDecision('exempt');
    const byTag = tag === undefined ? [] : rules.filter((r) => r.tags.some((re) => re.test(tag)));
    const tagRefusal = (enforce: boolean): PolicyRefusal | undefined => {
      const rule = byTag.find((r) => r.enforce === enforce);
      return rule && new PolicyRefusal(rule.name, `tag ${tag} is denied`);
    };
    const decision = this.decisions.get(key(ref, reply.digest)) ?? (await this.decide(ref, reply, rules));
    if (decision.exempt) return observer.policyDecision('exempt');
    const refusal = tagRefusal(true) ?? decision.refusal;
    const warned = tagRefusal(false) ?? decision.warned;
    const target = { upstream: ref.upstream, repository: ref.name, digest: reply.digest, ...(tag === undefined ? {} : { tag }) };
    if (refusal) {
      // Refused by its tag alone: the digest's own decision let its blobs through; not for this repository now.
      if (decision.refusal === undefined) this.mark(ref, await this.parsed(ref, reply), 'refused');
      observer.policyDecision('refused');
      logger.warn({ ...target, rule: refusal.rule, reason: refusal.reason }, 'manifest refused by policy');
      throw refusal;
    }
    if (warned) {
      observer.policyDecision('warned');
      logger.warn({ ...target, rule: warned.rule, reason: warned.reason }, 'policy would refuse this manifest (mode warn: served)');
      return;
    }
    observer.policyDecision('allowed');
  }

  /**
   * The digest's own verdict under `rules` (denied digests, an index that refused or passed it, a
   * signature), remembered for the tag TTL so a busy tag costs a cache lookup, not a parse.
   */
  private async decide(ref: RepoRef, reply: ManifestReply, rules: readonly Compiled[]): Promise<Decision> {
    const manifest = await this.parsed(ref, reply);
    let decision: Decision;
    if (manifest !== undefined && !runnable(manifest)) decision = { exempt: true };
    else {
      let refusal: PolicyRefusal | undefined;
      let warned: PolicyRefusal | undefined;
      for (const rule of rules) {
        const why = await this.refusalBy(rule, ref, reply.digest);
        if (why === undefined) continue;
        const r = new PolicyRefusal(rule.name, why);
        if (rule.enforce) refusal ??= r;
        else warned ??= r;
      }
      decision = { exempt: false, refusal, warned };
      this.mark(ref, manifest, refusal === undefined ? 'allowed' : 'refused');
    }
    this.decisions.set(key(ref, reply.digest), decision);
    return decision;
  }

  private async parsed(ref: RepoRef, reply: ManifestReply): Promise<ParsedManifest | undefined> {
    const bytes = reply.bytes ?? (await this.inner.manifest(ref, { kind: 'digest', digest: reply.digest }, MANIFEST_MEDIA_TYPES)).bytes;
    return bytes === undefined ? undefined : parseManifest(bytes, reply.mediaType);
  }

  /** An index's platforms pass or fall with it; an image's blobs are refused with it, unless an allowed image uses them. */
  private mark(ref: RepoRef, manifest: ParsedManifest | undefined, state: 'allowed' | 'refused'): void {
    if (manifest === undefined) return;
    for (const child of manifest.manifests) {
      const k = key(ref, child.digest);
      if (state === 'allowed' || this.inherited.get(k) !== 'allowed') this.inherited.set(k, state);
    }
    for (const blob of [...(manifest.config ? [manifest.config] : []), ...manifest.layers]) {
      const k = key(ref, blob.digest);
      if (state === 'allowed' || this.blobs.get(k) !== 'allowed') this.blobs.set(k, state);
    }
  }

  /** Why `rule` refuses the digest, or undefined when it lets it through. */
  private async refusalBy(rule: Compiled, ref: RepoRef, digest: Digest): Promise<string | undefined> {
    if (rule.digests.has(digest)) return `digest ${digest} is denied`;
    const inherited = this.inherited.get(key(ref, digest));
    if (inherited === 'refused') return `an index listing ${digest} was refused`;
    if (!rule.requiresSignature || inherited === 'allowed') return undefined;
    return (await this.isSigned(rule, ref, digest)) ? undefined : `no signature of ${digest} verifies with the rule's keys`;
  }

  private async isSigned(rule: Compiled, ref: RepoRef, digest: Digest): Promise<boolean> {
    return (await this.signedVia(this.referrerSignatures(ref, digest), ref, digest, rule.keys)) || (await this.signedVia(this.tagSignatures(ref, digest), ref, digest, rule.keys));
  }

  /** Signature manifests stored as OCI 1.1 referrers of the digest. */
  private async referrerSignatures(ref: RepoRef, digest: Digest): Promise<Buffer[]> {
    const list = await this.inner.referrers(ref, digest, COSIGN_SIGNATURE_ARTIFACT, '');
    const { manifests } = JSON.parse(list.body.toString('utf8')) as { manifests: { digest: Digest }[] };
    const found: Buffer[] = [];
    for (const m of manifests.slice(0, 16)) {
      const bytes = (await this.inner.manifest(ref, { kind: 'digest', digest: m.digest }, MANIFEST_MEDIA_TYPES)).bytes;
      if (bytes !== undefined) found.push(bytes);
    }
    return found;
  }

  /** The signature manifest under cosign's `sha256-<hex>.sig` tag. */
  private async tagSignatures(ref: RepoRef, digest: Digest): Promise<Buffer[]> {
    const bytes = (await this.inner.manifest(ref, { kind: 'tag', tag: parseTag(signatureTag(digest)) }, MANIFEST_MEDIA_TYPES)).bytes;
    return bytes === undefined ? [] : [bytes];
  }

  /** Whether any signature layer of the manifests found verifies; a lookup that fails finds nothing (fail closed). */
  private async signedVia(lookup: Promise<Buffer[]>, ref: RepoRef, digest: Digest, keys: readonly KeyObject[]): Promise<boolean> {
    let manifests: Buffer[];
    try {
      manifests = await lookup;
    } catch {
      return false;
    }
    for (const manifest of manifests) {
      for (const layer of signatureLayers(manifest)) {
        const payload = await this.payload(ref, layer.payload);
        if (payload !== undefined && verifiesFor(digest, payload, layer.signature, keys)) return true;
      }
    }
    return false;
  }

  private async payload(ref: RepoRef, digest: Digest): Promise<Buffer | undefined> {
    try {
      const reply = await this.inner.blob(ref, digest, undefined);
      if (reply.kind !== 'body') return undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of reply.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_PAYLOAD_BYTES) {
          reply.body.destroy();
          return undefined;
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks);
    } catch {
      return undefined;
    }
  }
}

function key(ref: RepoRef, digest: string): string {
  return `${ref.upstream}\u0000${ref.name}\u0000${digest}`;
}

/**
 * Whether a manifest can run as a container: an index (its platforms can), or an image with a
 * filesystem layer. Signatures, attestations and SBOMs carry none, so they need no signature of their
 * own, and an image cannot pass as one by merely naming a subject.
 */
function runnable(manifest: ParsedManifest): boolean {
  if (manifest.kind === 'index') return true;
  return manifest.layers.some((l) => /tar|rootfs/.test(l.mediaType));
}
