import { redactRedisUrl, type Config } from '../config/index.js';
import { FileKvStore } from './file-kv-store.js';
import { KeyvMetadataStore } from './metadata-store.js';
import { createRedisKvStore } from './redis-kv-store.js';
import type { MetadataStore } from './types.js';

/** The configured metadata backend; no I/O until open(). */
export function createMetadataStore(
  storage: Config['storage'],
  hooks: { onConnectionChange?: (up: boolean, reason: string | undefined) => void } = {},
): MetadataStore {
  const { metadata } = storage;
  if (metadata.kind === 'embedded') return new KeyvMetadataStore(new FileKvStore({ root: storage.path }));
  const kv = createRedisKvStore({ url: metadata.url, displayUrl: redactRedisUrl(metadata.url), ...hooks });
  return new KeyvMetadataStore(kv, { namespace: metadata.namespace, shared: true });
}
