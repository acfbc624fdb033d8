import Keyv, { type Deserialize, type KeyvStoreAdapter, type Serialize } from 'keyv';
import { parseDigest, type Digest } from '../oci/index.js';
import { StorageError } from './errors.js';
import type { BlobRecord, ManifestRecord, MetadataStore, TagRecord } from './types.js';

/** A keyv store, optionally with an explicit open step (FileKvStore loads its log there). */
export type MetadataKvStore = KeyvStoreAdapter & { open?(): Promise<void> };

export interface KeyvMetadataStoreOptions {
  /** keyv key prefix: lets several deployments share one Redis. Default 'regmirror'. */
  readonly namespace?: string;
}

/**
 * Plain JSON both ways: keyv's default serializer rewrites strings that start with ':'
 * (and ':base64:' into Buffers), which a record must never go through.
 */
const serialize: Serialize = (data) => JSON.stringify(data);
// JSON.parse gives `any`; keyv only reads `value` and `expires`, and the records are checked below.
const deserialize: Deserialize = (text) => JSON.parse(text);

/**
 * Tags, manifests and blob links on any keyv store. Keys:
 * `tag:<upstream>/<repository>:<tag>`, `manifest:<digest>`, `blob:<digest>`; the upstream
 * name is URI-encoded so it cannot contain the `/` that starts the repository, and a
 * repository never contains `:`, so distinct triples never share a key.
 */
export class KeyvMetadataStore implements MetadataStore {
  readonly #store: MetadataKvStore;
  readonly #keyv: Keyv;
  readonly #namespace: string;
  #closed: Promise<void> | undefined;

  constructor(store: MetadataKvStore, options: KeyvMetadataStoreOptions = {}) {
    this.#store = store;
    this.#namespace = options.namespace ?? 'regmirror';
    this.#keyv = new Keyv({
      store,
      namespace: this.#namespace,
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

  async getTag(upstream: string, repository: string, tag: string): Promise<TagRecord | undefined> {
    return toTagRecord(await this.#get(tagKey(upstream, repository, tag)));
  }

  async setTag(upstream: string, repository: string, tag: string, record: TagRecord): Promise<void> {
    await this.#set(tagKey(upstream, repository, tag), record);
  }

  async listTags(upstream: string, repository: string): Promise<string[]> {
    const prefix = `${this.#namespace}:${tagKey(upstream, repository, '')}`;
    const tags: string[] = [];
    try {
      // The adapter's own iterator (keyv offers one only for the adapters it knows); keys carry the namespace.
      for await (const [key] of this.#store.iterator?.(this.#namespace) ?? []) {
        if (typeof key === 'string' && key.startsWith(prefix)) tags.push(key.slice(prefix.length));
      }
    } catch (cause) {
      throw new StorageError(`listing tags of ${repository} failed`, { cause });
    }
    return tags.sort();
  }

  async deleteTag(upstream: string, repository: string, tag: string): Promise<void> {
    try {
      await this.#keyv.delete(tagKey(upstream, repository, tag));
    } catch (cause) {
      throw new StorageError(`deleting tag ${repository}:${tag} failed`, { cause });
    }
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

  async deleteBlob(digest: Digest): Promise<void> {
    try {
      await this.#keyv.delete(`blob:${digest}`);
    } catch (cause) {
      throw new StorageError(`deleting metadata of ${digest} failed`, { cause });
    }
  }

  async #get(key: string): Promise<unknown> {
    try {
      return await this.#keyv.get(key);
    } catch (cause) {
      throw new StorageError(`reading metadata ${key} failed`, { cause });
    }
  }

  async #set(key: string, value: object): Promise<void> {
    try {
      await this.#keyv.set(key, value);
    } catch (cause) {
      throw new StorageError(`writing metadata ${key} failed`, { cause });
    }
  }
}

function tagKey(upstream: string, repository: string, tag: string): string {
  return `tag:${encodeURIComponent(upstream)}/${repository}:${tag}`;
}

// Records come back from disk or Redis, possibly written by another version: anything
// that does not have the expected shape counts as absent rather than reaching the caller.

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toTagRecord(value: unknown): TagRecord | undefined {
  if (!isObject(value)) return undefined;
  const { digest, mediaType, size, fetchedAt } = value;
  if (typeof digest !== 'string' || typeof mediaType !== 'string' || typeof size !== 'number' || typeof fetchedAt !== 'number') {
    return undefined;
  }
  try {
    return { ...value, digest: parseDigest(digest), mediaType, size, fetchedAt };
  } catch {
    return undefined;
  }
}

function toManifestRecord(value: unknown): ManifestRecord | undefined {
  if (!isObject(value)) return undefined;
  const { mediaType, size } = value;
  if (typeof mediaType !== 'string' || typeof size !== 'number') return undefined;
  return { ...value, mediaType, size };
}

function toBlobRecord(value: unknown): BlobRecord | undefined {
  if (!isObject(value)) return undefined;
  const { size, upstreams } = value;
  if (typeof size !== 'number' || !Array.isArray(upstreams) || !upstreams.every((u) => typeof u === 'string')) {
    return undefined;
  }
  return { ...value, size, upstreams: upstreams as string[] };
}
