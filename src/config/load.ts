import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, ConfigErrors } from './errors.js';
import { boolean, collectInto, integer, nonEmptyString, object, onlyKeys, optionalString, throwFirst, type Attempt, type Json } from './fields.js';
import { describeJsonError } from './json-position.js';
import { parsePins } from './repositories.js';
import { NO_SYNC, parseSyncConfig } from './sync.js';
import { NETWORK_KEYS, parseUpstreamNetwork } from './upstream-network.js';
import { parseCluster } from './cluster.js';
import { parseMetadata } from './metadata.js';
import { parseEndpoints } from './endpoints.js';
import { parsePolicy } from './policy.js';
import { checkPrivateUpstreams, parseAccess, parseAudit, parseAuth, parsePrivate, parseTls } from './security.js';
import type { Config, UpstreamConfig } from './types.js';
import { parseDuration, parseSize, parseSpaceFloor, type SpaceFloor } from './units.js';

export { ConfigError, ConfigErrors };

/** What the CLI may override on top of the file. */
export interface ConfigOverrides {
  readonly listen?: string;
  readonly storage?: string;
  readonly logLevel?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOP_KEYS = ['$schema', 'listen', 'storage', 'upstreams', 'defaultUpstream', 'manifestTTL', 'log', 'metrics', 'shutdownGrace', 'sync', 'tls', 'auth', 'access', 'audit', 'policy', 'cluster'];
const UPSTREAM_KEYS = ['url', 'offline', 'username', 'password', 'passwordEnv', 'library', 'aliases', 'timeouts', 'connections', 'private', ...NETWORK_KEYS, 'endpoints', 'endpointCooldown', 'notFoundTTL'];

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
    throw new ConfigError('', `config file ${file} is not valid JSON: ${describeJsonError(text, err as Error)}`);
  }
  return parseConfig(raw, { baseDir: path.dirname(path.resolve(file)), overrides, env });
}

/**
 * Validates and defaults a parsed config. Relative `storage.path` in the file is resolved against the
 * file's directory (so the service does not depend on its working directory); a `--storage` override is
 * resolved against the working directory, like any CLI path. Every mistake is collected before
 * anything is thrown: one ConfigError, or ConfigErrors listing them all (`config check` prints each).
 */
export function parseConfig(raw: unknown, options: { baseDir: string; overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv }): Config {
  const errors: ConfigError[] = [];
  const config = parseCollecting(raw, options, collectInto(errors));
  const [first, ...more] = errors;
  if (first !== undefined) throw more.length === 0 ? first : new ConfigErrors([first, ...more]);
  return config;
}

function parseCollecting(raw: unknown, options: { baseDir: string; overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv }, attempt: Attempt): Config {
  const { baseDir, overrides = {}, env = process.env } = options;
  // Without an object at the top there is nothing more to check.
  const root = throwFirst(() => object(raw, ''), {});
  attempt(() => onlyKeys(root, TOP_KEYS, ''), undefined);

  const listenKey = overrides.listen !== undefined ? '--listen' : 'listen';
  const listen = attempt(() => parseListen(overrides.listen ?? root['listen'] ?? '0.0.0.0:5000', listenKey), { host: '0.0.0.0', port: 0 });

  const storageRaw = attempt(() => object(root['storage'] ?? {}, 'storage'), {});
  attempt(() => onlyKeys(storageRaw, ['path', 'maxSize', 'minFree', 'pin', 'metadata', 'metadataNamespace', 'hashThread'], 'storage'), undefined);
  const storagePath = attempt(
    () =>
      overrides.storage !== undefined
        ? path.resolve(nonEmptyString(overrides.storage, '--storage'))
        : path.resolve(baseDir, nonEmptyString(storageRaw['path'] ?? './data', 'storage.path')),
    baseDir,
  );
  const maxSize = attempt(() => {
    const bytes = parseSize(storageRaw['maxSize'] ?? '20GiB');
    if (bytes === undefined || bytes <= 0) throw new ConfigError('storage.maxSize', 'must be a positive size such as "20GiB" or "500MB"');
    return bytes;
  }, 1);
  const minFree = attempt(() => {
    const floor = parseSpaceFloor(storageRaw['minFree'] ?? '5%');
    if (floor === undefined) throw new ConfigError('storage.minFree', 'must be a size such as "2GiB" or a share of the disk such as "5%" (at most 90%)');
    return floor;
  }, { kind: 'bytes', bytes: 0 } as SpaceFloor);

  const hashThread = attempt(() => boolean(storageRaw['hashThread'] ?? false, 'storage.hashThread'), false);
  const metadata = attempt(() => parseMetadata(storageRaw['metadata'], storageRaw['metadataNamespace']), { kind: 'embedded' } as Config['storage']['metadata']);

  const upstreamsRaw = attempt(() => object(root['upstreams'], 'upstreams'), undefined);
  const upstreams = new Map<string, UpstreamConfig>();
  for (const [name, value] of Object.entries(upstreamsRaw ?? {})) {
    const upstream = attempt(() => parseUpstream(name, value, { env, baseDir }, attempt), undefined);
    if (upstream !== undefined) upstreams.set(name, upstream);
  }
  attempt(() => {
    if (upstreamsRaw !== undefined && Object.keys(upstreamsRaw).length === 0) throw new ConfigError('upstreams', 'must configure at least one upstream');
  }, undefined);
  attempt(() => checkAliases(upstreams), undefined);
  // What names an upstream is checked only against a complete list: a broken entry must not make every reference to it a second error.
  const complete = upstreams.size > 0 && upstreams.size === Object.keys(upstreamsRaw ?? {}).length;
  const dependent = <T>(read: () => T, fallback: T): T => (complete ? attempt(read, fallback) : fallback);

  const pin = dependent(() => parsePins(storageRaw['pin'] ?? [], upstreams), []);

  const defaultUpstream = dependent(() => {
    const name = root['defaultUpstream'] ?? (upstreams.size === 1 ? [...upstreams.keys()][0] : undefined);
    if (typeof name !== 'string' || !upstreams.has(name)) {
      throw new ConfigError('defaultUpstream', `must name one of the configured upstreams (${[...upstreams.keys()].join(', ')})`);
    }
    return name;
  }, '');

  const manifestTTLms = attempt(() => {
    const ms = parseDuration(root['manifestTTL'] ?? '5m');
    if (ms === undefined) throw new ConfigError('manifestTTL', 'must be a duration such as "5m", "1h" or "0"');
    return ms;
  }, 0);

  const logRaw = attempt(() => object(root['log'] ?? {}, 'log'), {});
  attempt(() => onlyKeys(logRaw, ['level'], 'log'), undefined);
  const level = attempt(() => {
    const value = overrides.logLevel ?? logRaw['level'] ?? 'info';
    if (!LOG_LEVELS.includes(value as (typeof LOG_LEVELS)[number])) {
      throw new ConfigError(overrides.logLevel !== undefined ? '--log-level' : 'log.level', `must be one of ${LOG_LEVELS.join(', ')}`);
    }
    return value as Config['log']['level'];
  }, 'info');

  const metricsRaw = attempt(() => object(root['metrics'] ?? {}, 'metrics'), {});
  attempt(() => onlyKeys(metricsRaw, ['listen', 'perRepository'], 'metrics'), undefined);
  const metricsListen = attempt(() => (metricsRaw['listen'] === undefined ? undefined : parseListen(metricsRaw['listen'], 'metrics.listen')), undefined);
  const perRepository = attempt(() => {
    const value = metricsRaw['perRepository'] ?? 0;
    // Each repository label is a time series per metric: the cap keeps a busy mirror from flooding Prometheus.
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 10_000) {
      throw new ConfigError('metrics.perRepository', 'must be an integer from 0 (off) to 10000');
    }
    return value;
  }, 0);
  const shutdownGraceMs = attempt(() => {
    const ms = parseDuration(root['shutdownGrace'] ?? '30s');
    if (ms === undefined) throw new ConfigError('shutdownGrace', 'must be a duration such as "30s" or "0"');
    return ms;
  }, 0);

  const auth = attempt(() => parseAuth(root['auth'], baseDir), undefined);
  if (auth !== undefined || root['auth'] === undefined) dependent(() => checkPrivateUpstreams(upstreams, auth), undefined);

  return {
    listen,
    storage: { path: storagePath, maxSize, minFree, pin, metadata, hashThread },
    upstreams,
    defaultUpstream,
    manifestTTLms,
    log: { level },
    metrics: { listen: metricsListen, perRepository },
    shutdownGraceMs,
    sync: dependent(() => parseSyncConfig(root['sync'], upstreams, defaultUpstream), NO_SYNC),
    tls: attempt(() => parseTls(root['tls'], baseDir, parseListen), undefined),
    auth,
    access: dependent(() => parseAccess(root['access'], auth, upstreams), parseAccess(undefined, undefined, upstreams)),
    audit: attempt(() => parseAudit(root['audit'], baseDir), undefined),
    policy: attempt(() => parsePolicy(root['policy'], baseDir, upstreams), []),
    cluster: attempt(() => parseCluster(root['cluster'], env, baseDir), undefined),
  };
}

function parseUpstream(name: string, value: unknown, { env, baseDir }: { env: NodeJS.ProcessEnv; baseDir: string }, attempt: Attempt): UpstreamConfig {
  const key = `upstreams.${name}`;
  // The name is what clients put in ?ns= and in path prefixes: a registry host[:port].
  attempt(() => {
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/.test(name)) {
      throw new ConfigError(key, 'an upstream name must be a registry host name such as "docker.io" or "registry.local:5000"');
    }
  }, undefined);
  const u = object(value, key);
  attempt(() => onlyKeys(u, UPSTREAM_KEYS, key), undefined);
  // No url at all can only mean an upstream nobody may contact; with one, offline must be said.
  const offline = attempt(() => boolean(u['offline'] ?? (u['url'] === undefined && u['endpoints'] === undefined), `${key}.offline`), false);
  const configuredUrl = attempt(() => {
    if (!offline && u['url'] === undefined && u['endpoints'] === undefined) throw new ConfigError(`${key}.url`, 'is required unless the upstream is offline (or endpoints lists its URLs)');
    return u['url'] === undefined ? undefined : parseUrl(u['url'], `${key}.url`);
  }, undefined);
  const { url, ...endpoints } = parseEndpoints(u, key, configuredUrl, parseUrl, attempt);
  const credentials = attempt(() => parseCredentials(u, key, env, offline), { username: undefined, password: undefined });
  const library = attempt(() => boolean(u['library'] ?? name === 'docker.io', `${key}.library`), false);
  const aliases = attempt(() => {
    const raw = u['aliases'] ?? (name === 'docker.io' ? ['index.docker.io', 'registry-1.docker.io'] : []);
    if (!Array.isArray(raw) || !raw.every((a): a is string => typeof a === 'string' && a !== '')) {
      throw new ConfigError(`${key}.aliases`, 'must be a list of registry host names');
    }
    return raw;
  }, []);
  const t = attempt(() => object(u['timeouts'] ?? {}, `${key}.timeouts`), {});
  attempt(() => onlyKeys(t, ['connect', 'headers', 'bodyIdle'], `${key}.timeouts`), undefined);
  const timeout = (field: string, fallback: string) => attempt(() => durationMs(t[field] ?? fallback, `${key}.timeouts.${field}`), 1);
  return {
    name,
    url,
    ...endpoints,
    offline,
    ...credentials,
    officialLibrary: library,
    aliases,
    timeouts: { connectMs: timeout('connect', '10s'), headersMs: timeout('headers', '30s'), bodyIdleMs: timeout('bodyIdle', '60s') },
    connections: attempt(() => integer(u['connections'] ?? 32, `${key}.connections`, 1, 1024), 1),
    private: attempt(() => parsePrivate(u, key), false),
    ...parseUpstreamNetwork(u, key, { baseDir, env, offline }, attempt),
    notFoundTTLms: attempt(() => notFoundTTL(u['notFoundTTL'], `${key}.notFoundTTL`), 0),
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
  // "registry.example:5000" parses as a URL with the scheme "registry.example:": say what was meant.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) throw new ConfigError(key, `"${value}" has no scheme; write "https://${value.replace(/^\/+/, '')}"`);
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
  // The mirror adds /v2/ to every request: kept here it would ask for /v2/v2/… and every pull would 404.
  if (/\/v2\/?$/.test(url.pathname)) {
    throw new ConfigError(key, `must not end in /v2 (the mirror adds it); write "${url.origin}${url.pathname.replace(/\/?v2\/?$/, '')}"`);
  }
  return url;
}

/** Default 30 s: a crash-looping pod asks every few seconds, and a tag pushed upstream shows up within it. */
function notFoundTTL(value: unknown, key: string): number {
  const ms = parseDuration(value ?? '30s');
  if (ms === undefined) throw new ConfigError(key, 'must be a duration such as "30s", or "0" to always ask the upstream');
  return ms;
}

function durationMs(value: unknown, key: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new ConfigError(key, 'must be a positive duration such as "30s"');
  return ms;
}
