import Keyv, { type Deserialize, type KeyvStoreAdapter, type Serialize } from 'keyv';
import { parseDigest, type Digest } from '../../oci/index.js';
import { MetadataUnavailableError, StorageError } from '../errors.js';
import {
  isLinkRecord,
  LINK_RECORD,
  linkKey,
  linkPrefix,
  parseLinkSuffix,
  parseTagKey,
  referrersKey,
  tagKey,
  toBlobRecord,
  toManifestRecord,
  toReferrersRecord,
  toTagRecord,
} from './metadata-records.js';
import { MemoryLeases, type Leases } from '../leases.js';
import type { BlobRecord, DigestEntry, ManifestRecord, MetadataStore, ReferrersRecord, RepositoryLink, TagEntry, TagRecord } from '../types.js';

/**
 * A keyv store, optionally with an explicit open step (FileKvStore loads its log there, Redis
 * connects) and a way to say why an operation failed without leaking a secret.
 */
export type MetadataKvStore = KeyvStoreAdapter & {
  open?(): Promise<void>;
  describeError?(err: unknown): { readonly reason: string; readonly unavailable: boolean };
  /** Leases other replicas see (Redis); without it, leases are this process's own. */
  leases?(namespace: string): Leases;
};

export interface KeyvMetadataStoreOptions {
  /** keyv key prefix: lets several deployments share one Redis. Default 'regmirror'. */
  readonly namespace?: string;
  /** Other replicas read the same records (Redis). Default false. */
  readonly shared?: boolean;
  /** The clock that decides whether an entry with a ttl has expired. Default Date.now. */
  readonly now?: () => number;
}

/**
 * Plain JSON both ways: keyv's default serializer rewrites strings that start with ':'
 * (and ':base64:' into Buffers), which a record must never go through.
 */
const serialize: Serialize = (data) => JSON.stringify(data);
// JSON.parse gives `any`; keyv only reads `value` and `expires`, and the records are checked below.
const deserialize: Deserialize = (text) => JSON.parse(text);

/** Tags, manifests and blob links on any keyv store (keys: metadata-records.ts). */
export class KeyvMetadataStore implements MetadataStore {
  readonly shared: boolean;
  /** Who revalidates a tag or runs a sync entry now: across replicas with Redis, in this process otherwise. */
  readonly leases: Leases;
  readonly #store: MetadataKvStore;
  readonly #keyv: Keyv;
  readonly #now: () => number;
  /** The keyv key prefix (`<namespace>:<key>`). */
  readonly namespace: string;
  #closed: Promise<void> | undefined;

  constructor(store: MetadataKvStore, options: KeyvMetadataStoreOptions = {}) {
    this.#store = store;
    this.namespace = options.namespace ?? 'regmirror';
    this.shared = options.shared ?? false;
    this.#now = options.now ?? Date.now;
    this.leases = store.leases?.(this.namespace) ?? new MemoryLeases(this.#now);
    this.#keyv = new Keyv({
      store,
      namespace: this.namespace,
      serialize,
      deserialize,
      throwOnErrors: true,
    });
  }

  async open(): Promise<void> {
    await this.#store.open?.();
  }

  close(): Promise<void> {
    this.#closed ??= this.#keyv.disconnect();
    return this.#closed;
  }

  /** A Redis client would quietly reconnect on use after close(): closed means closed for every store. */
  #assertOpen(what: string): void {
    if (this.#closed !== undefined) throw new StorageError(`${what}: the metadata store is closed`);
  }

  async getTag(upstream: string, repository: string, tag: string): Promise<TagRecord | undefined> {
    return toTagRecord(await this.#get(tagKey(upstream, repository, tag)));
  }

  async setTag(upstream: string, repository: string, tag: string, record: TagRecord): Promise<void> {
    await this.#set(tagKey(upstream, repository, tag), record);
  }

  async getReferrers(upstream: string, repository: string, subject: Digest, page: string): Promise<ReferrersRecord | undefined> {
    return toReferrersRecord(await this.#get(referrersKey(upstream, repository, subject, page)));
  }

  async setReferrers(upstream: string, repository: string, subject: Digest, page: string, record: ReferrersRecord): Promise<void> {
    await this.#set(referrersKey(upstream, repository, subject, page), record);
  }

  async listTags(upstream: string, repository: string): Promise<string[]> {
    // The key prefix picks this repository's tags before any value is parsed (sync prune asks per repository).
    const prefix = tagKey(upstream, repository, '');
    const tags: string[] = [];
    for await (const [key, value] of this.#entries(prefix)) if (toTagRecord(value) !== undefined) tags.push(key.slice(prefix.length));
    return tags.sort();
  }

  async getManifest(digest: Digest): Promise<ManifestRecord | undefined> {
    return toManifestRecord(await this.#get(`manifest:${digest}`));
  }

  async setManifest(digest: Digest, record: ManifestRecord): Promise<void> {
    await this.#set(`manifest:${digest}`, record);
  }

  async getBlob(digest: Digest): Promise<BlobRecord | undefined> {
    return toBlobRecord(await this.#get(`blob:${digest}`));
  }

  async setBlob(digest: Digest, record: BlobRecord): Promise<void> {
    await this.#set(`blob:${digest}`, record);
  }

  async link(upstream: string, repository: string, digests: readonly Digest[]): Promise<void> {
    await Promise.all(digests.map((digest) => this.#set(linkKey(upstream, repository, digest), LINK_RECORD)));
  }

  async hasLink(upstream: string, repository: string, digest: Digest): Promise<boolean> {
    return isLinkRecord(await this.#get(linkKey(upstream, repository, digest)));
  }

  async linkedRepositories(digest: Digest): Promise<RepositoryLink[]> {
    const prefix = linkPrefix(digest);
    const links: RepositoryLink[] = [];
    for await (const [key, value] of this.#entries(prefix)) {
      const link = isLinkRecord(value) ? parseLinkSuffix(key.slice(prefix.length)) : undefined;
      if (link !== undefined) links.push(link);
    }
    return links.sort((a, b) => a.upstream.localeCompare(b.upstream) || a.repository.localeCompare(b.repository));
  }

  async *links(): AsyncIterable<RepositoryLink & { readonly digest: Digest }> {
    for await (const [key, value] of this.#entries('link:')) {
      // `link:<digest>:<upstream>/<repository>`: the digest holds exactly one ':' of its own.
      const at = key.indexOf(':', key.indexOf(':', 'link:'.length) + 1);
      const link = isLinkRecord(value) && at !== -1 ? parseLinkSuffix(key.slice(at + 1)) : undefined;
      if (link === undefined) continue;
      try {
        yield { ...link, digest: parseDigest(key.slice('link:'.length, at)) };
      } catch {
        // not a digest: a record of another shape, skipped as on reads
      }
    }
  }

  async repositories(): Promise<RepositoryLink[]> {
    const seen = new Map<string, RepositoryLink>();
    const add = (link: RepositoryLink | undefined) => {
      if (link !== undefined) seen.set(`${link.upstream}\u0000${link.repository}`, link);
    };
    for await (const [key, value] of this.#entries('tag:')) if (toTagRecord(value) !== undefined) add(parseTagKey(key));
    for await (const link of this.links()) add(link);
    return [...seen.values()]
      .map(({ upstream, repository }) => ({ upstream, repository }))
      .sort((a, b) => a.upstream.localeCompare(b.upstream) || a.repository.localeCompare(b.repository));
  }

  deleteBlob(digest: Digest): Promise<void> {
    return this.#delete(`blob:${digest}`);
  }

  deleteManifest(digest: Digest): Promise<void> {
    return this.#delete(`manifest:${digest}`);
  }

  deleteTag(upstream: string, repository: string, tag: string): Promise<void> {
    return this.#delete(tagKey(upstream, repository, tag));
  }

  async *tags(): AsyncIterable<TagEntry> {
    for await (const [key, value] of this.#entries('tag:')) {
      const name = parseTagKey(key);
      const record = toTagRecord(value);
      if (name !== undefined && record !== undefined) yield { ...name, record };
    }
  }

  manifests(): AsyncIterable<DigestEntry<ManifestRecord>> {
    return this.#digestEntries('manifest:', toManifestRecord);
  }

  blobs(): AsyncIterable<DigestEntry<BlobRecord>> {
    return this.#digestEntries('blob:', toBlobRecord);
  }

  async *#digestEntries<R>(kind: string, parse: (value: unknown) => R | undefined): AsyncIterable<DigestEntry<R>> {
    for await (const [key, value] of this.#entries(kind)) {
      const record = parse(value);
      if (record === undefined) continue;
      let digest: Digest;
      try {
        digest = parseDigest(key.slice(kind.length));
      } catch {
        continue;
      }
      yield { digest, record };
    }
  }

  /**
   * Walks the store's own iterator rather than keyv's: keyv offers one only for the adapters it
   * knows by name, which excludes FileKvStore. Both yield `<namespace>:<key>` with the raw text.
   */
  async *#entries(kind: string): AsyncIterable<[string, unknown]> {
    const iterator = this.#store.iterator;
    if (iterator === undefined) throw new StorageError('this metadata store cannot be enumerated');
    this.#assertOpen(`listing ${kind.slice(0, -1)} metadata failed`);
    const prefix = `${this.namespace}:${kind}`;
    try {
      for await (const [rawKey, raw] of iterator.call(this.#store, this.namespace) as AsyncIterable<[string, unknown]>) {
        if (typeof rawKey !== 'string' || !rawKey.startsWith(prefix) || typeof raw !== 'string') continue;
        const data = parseStored(raw);
        if (data === undefined || (typeof data.expires === 'number' && data.expires <= this.#now())) continue;
        yield [rawKey.slice(this.namespace.length + 1), data.value];
      }
    } catch (cause) {
      throw this.#error(`listing ${kind.slice(0, -1)} metadata failed`, cause);
    }
  }

  async #get(key: string): Promise<unknown> {
    this.#assertOpen(`reading metadata ${key} failed`);
    try {
      return await this.#keyv.get(key);
    } catch (cause) {
      throw this.#error(`reading metadata ${key} failed`, cause);
    }
  }

  async #set(key: string, value: object): Promise<void> {
    this.#assertOpen(`writing metadata ${key} failed`);
    try {
      await this.#keyv.set(key, value);
    } catch (cause) {
      throw this.#error(`writing metadata ${key} failed`, cause);
    }
  }

  async #delete(key: string): Promise<void> {
    this.#assertOpen(`deleting metadata ${key} failed`);
    try {
      await this.#keyv.delete(key);
    } catch (cause) {
      throw this.#error(`deleting metadata ${key} failed`, cause);
    }
  }

  #error(what: string, cause: unknown): StorageError {
    if (cause instanceof StorageError) return new StorageError(`${what}: ${cause.message}`, { cause });
    const why = this.#store.describeError?.(cause);
    if (why === undefined) return new StorageError(what, { cause });
    return why.unavailable ? new MetadataUnavailableError(`${what}: ${why.reason}`, { cause }) : new StorageError(`${what}: ${why.reason}`, { cause });
  }
}

function parseStored(raw: string): { value: unknown; expires?: unknown } | undefined {
  try {
    const data: unknown = JSON.parse(raw);
    return typeof data === 'object' && data !== null && 'value' in data ? (data as { value: unknown; expires?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}
