import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from './errors.js';
import { boolean, integer, nonEmptyString, object, onlyKeys, optionalString, type Json } from './fields.js';
import { parsePins } from './repositories.js';
import { parseSyncConfig } from './sync.js';
import { parseMetadata } from './metadata.js';
import { parsePolicy } from './policy.js';
import { checkPrivateUpstreams, parseAccess, parseAudit, parseAuth, parsePrivate, parseTls } from './security.js';
import type { Config, UpstreamConfig } from './types.js';
import { parseDuration, parseSize, parseSpaceFloor } from './units.js';

export { ConfigError };

/** What the CLI may override on top of the file. */
export interface ConfigOverrides {
  readonly listen?: string;
  readonly storage?: string;
  readonly logLevel?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOP_KEYS = ['$schema', 'listen', 'storage', 'upstreams', 'defaultUpstream', 'manifestTTL', 'log', 'metrics', 'shutdownGrace', 'sync', 'tls', 'auth', 'access', 'audit', 'policy'];
const UPSTREAM_KEYS = ['url', 'offline', 'username', 'password', 'passwordEnv', 'library', 'aliases', 'timeouts', 'connections', 'private'];

export async function loadConfigFile(file: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('', `config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, { baseDir: path.dirname(path.resolve(file)), overrides, env });
}

/**
 * Validates and defaults a parsed config. Relative `storage.path` in the file is resolved against the
 * file's directory (so the service does not depend on its working directory); a `--storage` override is
 * resolved against the working directory, like any CLI path.
 */
export function parseConfig(raw: unknown, options: { baseDir: string; overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv }): Config {
  const { baseDir, overrides = {}, env = process.env } = options;
  const root = object(raw, '');
  onlyKeys(root, TOP_KEYS, '');

  const listen = parseListen(overrides.listen ?? root['listen'] ?? '0.0.0.0:5000', overrides.listen !== undefined ? '--listen' : 'listen');

  const storageRaw = object(root['storage'] ?? {}, 'storage');
  onlyKeys(storageRaw, ['path', 'maxSize', 'minFree', 'pin', 'metadata', 'metadataNamespace'], 'storage');
  const storagePath =
    overrides.storage !== undefined
      ? path.resolve(nonEmptyString(overrides.storage, '--storage'))
      : path.resolve(baseDir, nonEmptyString(storageRaw['path'] ?? './data', 'storage.path'));
  const maxSize = parseSize(storageRaw['maxSize'] ?? '20GiB');
  if (maxSize === undefined || maxSize <= 0) throw new ConfigError('storage.maxSize', 'must be a positive size such as "20GiB" or "500MB"');
  const minFree = parseSpaceFloor(storageRaw['minFree'] ?? '5%');
  if (minFree === undefined) throw new ConfigError('storage.minFree', 'must be a size such as "2GiB" or a share of the disk such as "5%" (at most 90%)');

  const metadata = parseMetadata(storageRaw['metadata'], storageRaw['metadataNamespace']);

  const upstreamsRaw = object(root['upstreams'], 'upstreams');
  const upstreams = new Map<string, UpstreamConfig>();
  for (const [name, value] of Object.entries(upstreamsRaw)) {
    upstreams.set(name, parseUpstream(name, value, env));
  }
  if (upstreams.size === 0) throw new ConfigError('upstreams', 'must configure at least one upstream');
  checkAliases(upstreams);

  const pin = parsePins(storageRaw['pin'] ?? [], upstreams);

  const defaultUpstream = root['defaultUpstream'] ?? (upstreams.size === 1 ? [...upstreams.keys()][0] : undefined);
  if (typeof defaultUpstream !== 'string' || !upstreams.has(defaultUpstream)) {
    throw new ConfigError('defaultUpstream', `must name one of the configured upstreams (${[...upstreams.keys()].join(', ')})`);
  }

  const manifestTTLms = parseDuration(root['manifestTTL'] ?? '5m');
  if (manifestTTLms === undefined) throw new ConfigError('manifestTTL', 'must be a duration such as "5m", "1h" or "0"');

  const logRaw = object(root['log'] ?? {}, 'log');
  onlyKeys(logRaw, ['level'], 'log');
  const level = overrides.logLevel ?? logRaw['level'] ?? 'info';
  if (!LOG_LEVELS.includes(level as (typeof LOG_LEVELS)[number])) {
    throw new ConfigError(overrides.logLevel !== undefined ? '--log-level' : 'log.level', `must be one of ${LOG_LEVELS.join(', ')}`);
  }

  const metricsRaw = object(root['metrics'] ?? {}, 'metrics');
  onlyKeys(metricsRaw, ['listen', 'perRepository'], 'metrics');
  const metricsListen = metricsRaw['listen'] === undefined ? undefined : parseListen(metricsRaw['listen'], 'metrics.listen');
  const perRepository = metricsRaw['perRepository'] ?? 0;
  // Each repository label is a time series per metric: the cap keeps a busy mirror from flooding Prometheus.
  if (typeof perRepository !== 'number' || !Number.isInteger(perRepository) || perRepository < 0 || perRepository > 10_000) {
    throw new ConfigError('metrics.perRepository', 'must be an integer from 0 (off) to 10000');
  }
  const shutdownGraceMs = parseDuration(root['shutdownGrace'] ?? '30s');
  if (shutdownGraceMs === undefined) throw new ConfigError('shutdownGrace', 'must be a duration such as "30s" or "0"');

  const auth = parseAuth(root['auth'], baseDir);
  checkPrivateUpstreams(upstreams, auth);

  return {
    listen,
    storage: { path: storagePath, maxSize, minFree, pin, metadata },
    upstreams,
    defaultUpstream,
    manifestTTLms,
    log: { level: level as Config['log']['level'] },
    metrics: { listen: metricsListen, perRepository },
    shutdownGraceMs,
    sync: parseSyncConfig(root['sync'], upstreams, defaultUpstream),
    tls: parseTls(root['tls'], baseDir, parseListen),
    auth,
    access: parseAccess(root['access'], auth, upstreams),
    audit: parseAudit(root['audit'], baseDir),
    policy: parsePolicy(root['policy'], baseDir, upstreams),
  };
}

function parseUpstream(name: string, value: unknown, env: NodeJS.ProcessEnv): UpstreamConfig {
  const key = `upstreams.${name}`;
  // The name is what clients put in ?ns= and in path prefixes: a registry host[:port].
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/.test(name)) {
    throw new ConfigError(key, 'an upstream name must be a registry host name such as "docker.io" or "registry.local:5000"');
  }
  const u = object(value, key);
  onlyKeys(u, UPSTREAM_KEYS, key);
  // No url at all can only mean an upstream nobody may contact; with one, offline must be said.
  const offline = boolean(u['offline'] ?? u['url'] === undefined, `${key}.offline`);
  if (!offline && u['url'] === undefined) throw new ConfigError(`${key}.url`, 'is required unless the upstream is offline');
  const url = u['url'] === undefined ? undefined : parseUrl(u['url'], `${key}.url`);
  const credentials = parseCredentials(u, key, env, offline);
  const library = u['library'] ?? name === 'docker.io';
  if (typeof library !== 'boolean') throw new ConfigError(`${key}.library`, 'must be true or false');
  const aliasesRaw = u['aliases'] ?? (name === 'docker.io' ? ['index.docker.io', 'registry-1.docker.io'] : []);
  if (!Array.isArray(aliasesRaw) || !aliasesRaw.every((a): a is string => typeof a === 'string' && a !== '')) {
    throw new ConfigError(`${key}.aliases`, 'must be a list of registry host names');
  }
  const t = object(u['timeouts'] ?? {}, `${key}.timeouts`);
  onlyKeys(t, ['connect', 'headers', 'bodyIdle'], `${key}.timeouts`);
  const connections = integer(u['connections'] ?? 32, `${key}.connections`, 1, 1024);
  return {
    name,
    url,
    offline,
    ...credentials,
    officialLibrary: library,
    aliases: aliasesRaw,
    timeouts: {
      connectMs: durationMs(t['connect'] ?? '10s', `${key}.timeouts.connect`),
      headersMs: durationMs(t['headers'] ?? '30s', `${key}.timeouts.headers`),
      bodyIdleMs: durationMs(t['bodyIdle'] ?? '60s', `${key}.timeouts.bodyIdle`),
    },
    connections,
    private: parsePrivate(u, key),
  };
}

/**
 * username with password or passwordEnv. An offline upstream never sends them, so none is resolved:
 * a config carried to the disconnected side need not bring the environment variable along.
 */
function parseCredentials(u: Json, key: string, env: NodeJS.ProcessEnv, offline: boolean): Pick<UpstreamConfig, 'username' | 'password'> {
  const username = optionalString(u['username'], `${key}.username`);
  const password = optionalString(u['password'], `${key}.password`);
  const passwordEnv = optionalString(u['passwordEnv'], `${key}.passwordEnv`);
  if (password !== undefined && passwordEnv !== undefined) throw new ConfigError(`${key}.password`, 'set either password or passwordEnv, not both');
  if (offline) return { username: undefined, password: undefined };
  let resolvedPassword = password;
  if (passwordEnv !== undefined) {
    resolvedPassword = env[passwordEnv];
    if (resolvedPassword === undefined || resolvedPassword === '') {
      throw new ConfigError(`${key}.passwordEnv`, `environment variable ${passwordEnv} is not set`);
    }
  }
  if ((username === undefined) !== (resolvedPassword === undefined)) {
    throw new ConfigError(`${key}.username`, 'username and password (or passwordEnv) go together');
  }
  return { username, password: resolvedPassword };
}

function checkAliases(upstreams: ReadonlyMap<string, UpstreamConfig>): void {
  const seen = new Map<string, string>();
  for (const u of upstreams.values()) {
    for (const alias of [u.name, ...u.aliases]) {
      const owner = seen.get(alias);
      if (owner !== undefined && owner !== u.name) {
        throw new ConfigError(`upstreams.${u.name}.aliases`, `"${alias}" is already a name of upstream ${owner}`);
      }
      seen.set(alias, u.name);
    }
  }
}

function parseListen(value: unknown, key: string): Config['listen'] {
  if (typeof value !== 'string') throw new ConfigError(key, 'must be "HOST:PORT", e.g. "0.0.0.0:5000"');
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(key, 'must be "HOST:PORT", e.g. "0.0.0.0:5000" (port 0 picks a free port)');
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function parseUrl(value: unknown, key: string): URL {
  if (typeof value !== 'string') throw new ConfigError(key, 'must be an http(s) URL such as "https://registry.example"');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(key, `"${value}" is not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(key, 'must use http or https');
  // Credentials belong in username/password(Env), where they are redacted; a URL gets logged.
  if (url.username !== '' || url.password !== '') throw new ConfigError(key, 'must not contain credentials; use username and passwordEnv');
  if (url.search !== '' || url.hash !== '') throw new ConfigError(key, 'must not have a query or fragment');
  return url;
}

function durationMs(value: unknown, key: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new ConfigError(key, 'must be a positive duration such as "30s"');
  return ms;
}
