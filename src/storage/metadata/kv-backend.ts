import { redactRedisUrl, type Config } from '../../config/index.js';
import { DegradableFileKvStore } from './degradable-kv-store.js';
import { FileKvStore } from './file-kv-store.js';
import { KeyvMetadataStore, type MetadataKvStore } from './metadata-store.js';
import { createRedisKvStore } from './redis-kv-store.js';
import type { StorageHealth } from '../health.js';
import type { MetadataStore } from '../types.js';

/**
 * Where records live, apart from what the records are: the embedded log under the storage
 * directory, or Redis shared by replicas. A feature with records of its own (users, tokens, audit)
 * takes the same backend and keeps its keys under its own namespace segment, so one Redis or one
 * log file serves every record kind and replicas see the same state.
 */
export interface KvBackend {
  readonly store: MetadataKvStore;
  /** keyv key prefix for this deployment: several deployments may share one Redis. */
  readonly namespace: string;
  /** Other replicas read and write the same records. */
  readonly shared: boolean;
  /** The clock its records with a ttl expire by, for every record API built on this backend. */
  readonly now?: () => number;
}

export interface KvBackendHooks {
  readonly onConnectionChange?: (up: boolean, reason: string | undefined) => void;
  /** With a health monitor (serve), a full disk degrades embedded writes instead of failing pulls. */
  readonly health?: StorageHealth;
  /** The clock records with a ttl expire by (tests pass a fake one). Default Date.now. */
  readonly now?: () => number;
}

/** The configured backend; no I/O until its store is opened. */
export function createKvBackend(storage: Pick<Config['storage'], 'path' | 'metadata'>, hooks: KvBackendHooks = {}): KvBackend {
  const { metadata } = storage;
  const { health, onConnectionChange, now } = hooks;
  const clock = now ? { now } : {};
  if (metadata.kind === 'embedded') {
    const options = { root: storage.path, ...clock };
    const store = health ? new DegradableFileKvStore({ ...options, health }) : new FileKvStore(options);
    return { store, namespace: 'regmirror', shared: false, ...clock };
  }
  const store = createRedisKvStore({ url: metadata.url, displayUrl: redactRedisUrl(metadata.url), onConnectionChange });
  return { store, namespace: metadata.namespace, shared: true, ...clock };
}

/** Tags, manifests and blob links on the configured backend. */
export function createMetadataStore(storage: Pick<Config['storage'], 'path' | 'metadata'>, hooks: KvBackendHooks = {}): MetadataStore {
  const { store, ...options } = createKvBackend(storage, hooks);
  return new KeyvMetadataStore(store, options);
}
