import { redactRedisUrl, type Config } from '../config/index.js';
import { DegradableFileKvStore } from './degradable-kv-store.js';
import { FileKvStore } from './file-kv-store.js';
import { KeyvMetadataStore } from './metadata-store.js';
import { createRedisKvStore } from './redis-kv-store.js';
import type { StorageHealth } from './storage-health.js';
import type { MetadataStore } from './types.js';

/** The configured metadata backend; no I/O until open(). */
export function createMetadataStore(
  storage: Config['storage'],
  hooks: { onConnectionChange?: (up: boolean, reason: string | undefined) => void; health?: StorageHealth } = {},
): MetadataStore {
  const { metadata } = storage;
  const { health, onConnectionChange } = hooks;
  if (metadata.kind === 'embedded') {
    // With a health monitor (serve), a full disk degrades metadata writes instead of failing pulls.
    return new KeyvMetadataStore(health ? new DegradableFileKvStore({ root: storage.path, health }) : new FileKvStore({ root: storage.path }));
  }
  const kv = createRedisKvStore({ url: metadata.url, displayUrl: redactRedisUrl(metadata.url), ...(onConnectionChange ? { onConnectionChange } : {}) });
  return new KeyvMetadataStore(kv, { namespace: metadata.namespace, shared: true });
}
