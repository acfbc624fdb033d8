import { ConfigError } from './errors.js';
import type { MetadataConfig } from './types.js';

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const USAGE = 'must be a Redis URL such as "redis://HOST:PORT" (omit it for the embedded on-disk store)';

/** `storage.metadata` and `storage.metadataNamespace`: absent means the embedded log. */
export function parseMetadata(value: unknown, namespaceRaw: unknown): MetadataConfig {
  if (value === undefined) {
    if (namespaceRaw !== undefined) throw new ConfigError('storage.metadataNamespace', 'only applies when storage.metadata is a Redis URL');
    return { kind: 'embedded' };
  }
  if (typeof value !== 'string') throw new ConfigError('storage.metadata', USAGE);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // The value may hold a password: never echo it.
    throw new ConfigError('storage.metadata', `is not a valid URL; ${USAGE}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('storage.metadata', USAGE);
  if (url.hostname === '') throw new ConfigError('storage.metadata', `has no host; ${USAGE}`);
  if (!/^(\/\d{0,2})?$/.test(url.pathname)) throw new ConfigError('storage.metadata', 'the path may only be a database number, e.g. redis://HOST:PORT/1');
  if (url.search !== '' || url.hash !== '') throw new ConfigError('storage.metadata', 'must not have a query or fragment');
  const namespace = namespaceRaw ?? 'regmirror';
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new ConfigError('storage.metadataNamespace', 'must be 1-64 letters, digits, ".", "_" or "-"');
  }
  return { kind: 'redis', url: value, namespace };
}

/** The URL with any password (and user name) replaced: what logs and errors may show. */
export function redactRedisUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password !== '' || url.username !== '') {
      url.username = '';
      url.password = '';
      return url.href.replace(`${url.protocol}//`, `${url.protocol}//[redacted]@`);
    }
    return url.href;
  } catch {
    return '[invalid URL]';
  }
}
