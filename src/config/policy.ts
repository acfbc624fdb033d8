import path from 'node:path';
import { isDigestString } from '../oci/index.js';
import { ConfigError } from './errors.js';
import { nonEmptyString, object, onlyKeys } from './fields.js';
import { parseRepositoryPatterns } from './repositories.js';
import type { PolicyRule, UpstreamConfig } from './types.js';

/** A tag, or a tag pattern with `*` (any run of tag characters): `1.2.*`, `*-debug`. */
const TAG_PATTERN = /^[A-Za-z0-9_*][A-Za-z0-9._*-]{0,127}$/;

/**
 * `policy`: rules over repositories (the storage.pin grammar), each denying digests or tags and/or
 * requiring a signature by one of its keys. A repository may match several rules: each applies.
 */
export function parsePolicy(value: unknown, baseDir: string, upstreams: ReadonlyMap<string, UpstreamConfig>): PolicyRule[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError('policy', 'must be a list of rules such as {"repositories": ["docker.io/myteam/*"], "requireSignature": {"keys": ["cosign.pub"]}}');
  return value.map((entry: unknown, i) => {
    const key = `policy[${i}]`;
    const raw = object(entry, key);
    onlyKeys(raw, ['name', 'repositories', 'deny', 'requireSignature', 'mode'], key);
    const name = raw['name'] === undefined ? key : nonEmptyString(raw['name'], `${key}.name`);
    const repositories = parseRepositoryPatterns(raw['repositories'], `${key}.repositories`, upstreams);
    if (repositories.length === 0) throw new ConfigError(`${key}.repositories`, 'must name at least one repository pattern');
    const deny = raw['deny'] === undefined ? [] : parseDeny(raw['deny'], `${key}.deny`);
    const requireSignature = raw['requireSignature'] === undefined ? undefined : parseKeys(raw['requireSignature'], `${key}.requireSignature`, baseDir);
    if (deny.length === 0 && requireSignature === undefined) throw new ConfigError(key, 'needs "deny" or "requireSignature": a rule with neither does nothing');
    const mode = raw['mode'] ?? 'enforce';
    if (mode !== 'enforce' && mode !== 'warn') throw new ConfigError(`${key}.mode`, 'must be "enforce" or "warn"');
    return { name, repositories, deny, requireSignature, mode };
  });
}

function parseDeny(value: unknown, key: string): string[] {
  if (!Array.isArray(value)) throw new ConfigError(key, 'must be a list of digests ("sha256:…") or tag patterns ("1.2.*")');
  return value.map((d: unknown, i) => {
    if (typeof d !== 'string' || !(isDigestString(d) || (!d.includes(':') && TAG_PATTERN.test(d)))) {
      throw new ConfigError(`${key}[${i}]`, 'must be a digest such as "sha256:<64 hex>" or a tag pattern such as "1.2.*"');
    }
    return d;
  });
}

function parseKeys(value: unknown, key: string, baseDir: string): { keys: string[] } {
  const raw = object(value, key);
  onlyKeys(raw, ['keys'], key);
  const keys = raw['keys'];
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError(`${key}.keys`, 'must list at least one public key file (PEM, as `cosign generate-key-pair` writes cosign.pub)');
  return { keys: keys.map((k: unknown, i) => path.resolve(baseDir, nonEmptyString(k, `${key}.keys[${i}]`))) };
}
