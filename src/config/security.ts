import path from 'node:path';
import { ConfigError } from './errors.js';
import { boolean, nonEmptyString, object, onlyKeys, optionalString, type Json } from './fields.js';
import { parseRepositoryPatterns } from './repositories.js';
import type { AccessConfig, AccessRule, AuditConfig, AuthConfig, TlsConfig, UpstreamConfig } from './types.js';
import { parseDuration, parseSize } from './units.js';

/**
 * The trust boundary's sections: `tls`, `auth`, `access` and `audit`. Paths are resolved against the
 * config file's directory, like `storage.path`, so a mounted Secret can be named relative to the config.
 */
export function parseTls(value: unknown, baseDir: string, parseListen: (v: unknown, key: string) => { host: string; port: number }): TlsConfig | undefined {
  if (value === undefined) return undefined;
  const raw = object(value, 'tls');
  onlyKeys(raw, ['cert', 'key', 'clientCA', 'listen'], 'tls');
  const clientCA = optionalString(raw['clientCA'], 'tls.clientCA');
  return {
    cert: path.resolve(baseDir, nonEmptyString(raw['cert'], 'tls.cert')),
    key: path.resolve(baseDir, nonEmptyString(raw['key'], 'tls.key')),
    clientCA: clientCA === undefined ? undefined : path.resolve(baseDir, clientCA),
    listen: raw['listen'] === undefined ? undefined : parseListen(raw['listen'], 'tls.listen'),
  };
}

export function parseAuth(value: unknown, baseDir: string): AuthConfig | undefined {
  if (value === undefined) return undefined;
  const raw = object(value, 'auth');
  onlyKeys(raw, ['htpasswd', 'groups', 'realm', 'signingKey', 'tokenTTL'], 'auth');
  const htpasswd = optionalString(raw['htpasswd'], 'auth.htpasswd');
  const signingKey = optionalString(raw['signingKey'], 'auth.signingKey');
  const groupsRaw = object(raw['groups'] ?? {}, 'auth.groups');
  const groups = new Map<string, readonly string[]>();
  for (const [group, members] of Object.entries(groupsRaw)) groups.set(group, names(members, `auth.groups.${group}`));
  const realm = optionalString(raw['realm'], 'auth.realm');
  if (realm !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(realm);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new ConfigError('auth.realm', 'must be the public URL of the token endpoint, e.g. "https://mirror.example/v2/token"');
    }
  }
  const tokenTTLms = parseDuration(raw['tokenTTL'] ?? '5m');
  // Clients refresh a token when it expires; under a minute means a token round trip per pull step.
  if (tokenTTLms === undefined || tokenTTLms < 60_000 || tokenTTLms > 24 * 3_600_000) throw new ConfigError('auth.tokenTTL', 'must be a duration from "1m" to "24h"');
  return {
    htpasswd: htpasswd === undefined ? undefined : path.resolve(baseDir, htpasswd),
    groups,
    realm,
    signingKey: signingKey === undefined ? undefined : path.resolve(baseDir, signingKey),
    tokenTTLms,
  };
}

const NO_ACCESS: AccessConfig = { anonymous: [], rules: [], admin: { users: [], groups: [] }, metrics: 'anonymous', trustedProxies: [] };

/**
 * `access`: who may read what. Without `auth` there is no one to tell apart, so only `trustedProxies`
 * (which the audit log uses too) may be set; with `auth`, whatever no rule allows is denied.
 */
export function parseAccess(value: unknown, auth: AuthConfig | undefined, upstreams: ReadonlyMap<string, UpstreamConfig>): AccessConfig {
  if (value === undefined) return NO_ACCESS;
  const raw = object(value, 'access');
  onlyKeys(raw, ['anonymous', 'rules', 'admin', 'metrics', 'trustedProxies'], 'access');
  if (auth === undefined) {
    const policyKey = ['anonymous', 'rules', 'admin', 'metrics'].find((k) => raw[k] !== undefined);
    if (policyKey !== undefined) throw new ConfigError(`access.${policyKey}`, 'needs an `auth` section: without it everyone may read everything');
  }
  const rulesRaw = raw['rules'] ?? [];
  if (!Array.isArray(rulesRaw)) throw new ConfigError('access.rules', 'must be a list of { repositories, users?, groups?, tokens?, actions }');
  const adminRaw = object(raw['admin'] ?? {}, 'access.admin');
  onlyKeys(adminRaw, ['users', 'groups'], 'access.admin');
  const metrics = raw['metrics'] ?? 'anonymous';
  if (metrics !== 'anonymous' && metrics !== 'admin') throw new ConfigError('access.metrics', 'must be "anonymous" or "admin"');
  return {
    anonymous: parseRepositoryPatterns(raw['anonymous'] ?? [], 'access.anonymous', upstreams),
    rules: rulesRaw.map((r: unknown, i) => parseRule(r, `access.rules[${i}]`, upstreams)),
    admin: { users: names(adminRaw['users'] ?? [], 'access.admin.users'), groups: names(adminRaw['groups'] ?? [], 'access.admin.groups') },
    metrics,
    trustedProxies: names(raw['trustedProxies'] ?? [], 'access.trustedProxies').map((p, i) => proxyRange(p, `access.trustedProxies[${i}]`)),
  };
}

function parseRule(value: unknown, key: string, upstreams: ReadonlyMap<string, UpstreamConfig>): AccessRule {
  const raw = object(value, key);
  onlyKeys(raw, ['repositories', 'users', 'groups', 'tokens', 'actions'], key);
  const actions = names(raw['actions'] ?? ['read'], `${key}.actions`);
  // A read-only mirror: "read" is the only action there is to grant.
  if (actions.length === 0 || actions.some((a) => a !== 'read')) throw new ConfigError(`${key}.actions`, 'must be ["read"]');
  const rule: AccessRule = {
    repositories: parseRepositoryPatterns(raw['repositories'], `${key}.repositories`, upstreams),
    users: names(raw['users'] ?? [], `${key}.users`),
    groups: names(raw['groups'] ?? [], `${key}.groups`),
    tokens: names(raw['tokens'] ?? [], `${key}.tokens`),
    actions: ['read'],
  };
  if (rule.users.length + rule.groups.length + rule.tokens.length === 0) {
    throw new ConfigError(key, 'must name users, groups or tokens (anonymous readers go in access.anonymous)');
  }
  return rule;
}

/** `access.trustedProxies`: an address or a CIDR range, IPv4 or IPv6. */
function proxyRange(text: string, key: string): string {
  const [address, bits, ...rest] = text.split('/');
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(address ?? '') && (address ?? '').split('.').every((o) => Number(o) <= 255);
  const v6 = !v4 && /^[0-9a-fA-F:.]+$/.test(address ?? '') && (address ?? '').includes(':');
  const max = v4 ? 32 : 128;
  if ((!v4 && !v6) || rest.length > 0 || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) {
    throw new ConfigError(key, `"${text}" must be an IP address or a CIDR range such as "10.0.0.0/8"`);
  }
  return text;
}

export function parseAudit(value: unknown, baseDir: string): AuditConfig | undefined {
  if (value === undefined) return undefined;
  const raw = object(value, 'audit');
  onlyKeys(raw, ['path', 'maxSize', 'maxFiles'], 'audit');
  const where = nonEmptyString(raw['path'], 'audit.path');
  const maxSize = parseSize(raw['maxSize'] ?? '100MiB');
  if (maxSize === undefined || maxSize < 1024) throw new ConfigError('audit.maxSize', 'must be a size of at least 1KiB, e.g. "100MiB"');
  const maxFiles = raw['maxFiles'] ?? 5;
  if (typeof maxFiles !== 'number' || !Number.isInteger(maxFiles) || maxFiles < 1 || maxFiles > 1000) throw new ConfigError('audit.maxFiles', 'must be an integer from 1 to 1000');
  return { path: where === 'stdout' ? 'stdout' : path.resolve(baseDir, where), maxSize, maxFiles };
}

/** `upstreams.<name>.private` needs someone to tell readers apart. */
export function checkPrivateUpstreams(upstreams: ReadonlyMap<string, UpstreamConfig>, auth: AuthConfig | undefined): void {
  const exposed = [...upstreams.values()].find((u) => u.private);
  if (exposed !== undefined && auth === undefined) {
    throw new ConfigError(`upstreams.${exposed.name}.private`, 'needs an `auth` section: without it anyone who reaches the mirror can read everything');
  }
}

export function parsePrivate(u: Json, key: string): boolean {
  return u['private'] === undefined ? false : boolean(u['private'], `${key}.private`);
}

function names(value: unknown, key: string): string[] {
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string' && v !== '')) throw new ConfigError(key, 'must be a list of non-empty strings');
  return value;
}
