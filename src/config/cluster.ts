import { ConfigError } from './errors.js';
import { nonEmptyString, object, onlyKeys, optionalString, type Json } from './fields.js';
import { parseDuration } from './units.js';
import { readCaFile, type PemFile } from './upstream-network.js';

/**
 * `cluster`: several replicas acting as one mirror. Each blob digest has one owner among the live
 * members (rendezvous hashing); the others fetch it from the owner, so the upstream sees one GET.
 */
export interface ClusterConfig {
  /** `cluster.peers`: base URLs (origin only, no trailing slash) of the other replicas, or undefined with `dns`. */
  readonly peers: readonly string[] | undefined;
  /** `cluster.dns`: a headless Service name whose A/AAAA records are the replicas, and their port. */
  readonly dns: { readonly host: string; readonly port: number } | undefined;
  /** `cluster.self`: this replica's URL as its peers reach it; undefined: `http://<POD_IP>:<bound port>`. */
  readonly self: string | undefined;
  /** The `POD_IP` environment variable, when `self` was not given. */
  readonly podIp: string | undefined;
  /** Shared by every replica: signs the internal requests. Resolved from `secret` or `secretEnv`; never logged. */
  readonly secret: string;
  /** How often peers' /readyz is polled and `dns` re-resolved (`cluster.probeInterval`, default 3s). */
  readonly probeIntervalMs: number;
  /** `cluster.ca`: certificates the replicas' own are trusted by, beside the built-in roots (peers over https). */
  readonly ca: PemFile | undefined;
}

const KEYS = ['peers', 'dns', 'self', 'secret', 'secretEnv', 'probeInterval', 'ca'];
/** Shorter secrets are guessable offline from one signed request. */
const MIN_SECRET = 16;

export function parseCluster(value: unknown, env: NodeJS.ProcessEnv, baseDir: string): ClusterConfig | undefined {
  if (value === undefined) return undefined;
  const c = object(value, 'cluster');
  onlyKeys(c, KEYS, 'cluster');
  if ((c['peers'] === undefined) === (c['dns'] === undefined)) throw new ConfigError('cluster.peers', 'set either cluster.peers (a list of base URLs) or cluster.dns ("name:port"), one of them');
  const peers = c['peers'] === undefined ? undefined : peerList(c['peers']);
  const dns = c['dns'] === undefined ? undefined : dnsName(c['dns']);
  const self = c['self'] === undefined ? undefined : baseUrl(c['self'], 'cluster.self');
  const podIp = self === undefined ? env['POD_IP'] : undefined;
  if (self === undefined && (podIp === undefined || podIp === '')) {
    throw new ConfigError('cluster.self', 'is required (this replica\'s URL as its peers reach it) unless the POD_IP environment variable is set');
  }
  const probeIntervalMs = parseDuration(c['probeInterval'] ?? '3s');
  if (probeIntervalMs === undefined || probeIntervalMs < 100) throw new ConfigError('cluster.probeInterval', 'must be a duration of at least 100ms such as "3s"');
  return { peers, dns, self, podIp: podIp || undefined, secret: secretOf(c, env), probeIntervalMs, ca: readCaFile(c['ca'], baseDir, 'cluster.ca') };
}

function secretOf(c: Json, env: NodeJS.ProcessEnv): string {
  const secret = optionalString(c['secret'], 'cluster.secret');
  const secretEnv = optionalString(c['secretEnv'], 'cluster.secretEnv');
  if (secret !== undefined && secretEnv !== undefined) throw new ConfigError('cluster.secret', 'set either secret or secretEnv, not both');
  if (secret === undefined && secretEnv === undefined) throw new ConfigError('cluster.secret', 'is required with cluster (or cluster.secretEnv): it authenticates the replicas to each other');
  const value = secret ?? env[secretEnv ?? ''];
  if (value === undefined || value === '') throw new ConfigError('cluster.secretEnv', `environment variable ${secretEnv} is not set`);
  // The value itself is never echoed.
  if (value.length < MIN_SECRET) throw new ConfigError(secret !== undefined ? 'cluster.secret' : 'cluster.secretEnv', `must be at least ${MIN_SECRET} characters`);
  return value;
}

function peerList(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ConfigError('cluster.peers', 'must be a list of base URLs such as "http://10.0.0.2:5000"');
  return [...new Set(value.map((v, i) => baseUrl(v, `cluster.peers[${i}]`)))];
}

/** `http(s)://host:port`, as every replica must spell it alike: the hash ranks members by this string. */
export function baseUrl(value: unknown, key: string): string {
  const text = nonEmptyString(value, key);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(key, 'must be a URL such as "http://10.0.0.2:5000"');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(key, 'must be an http:// or https:// URL');
  if (url.username !== '' || url.password !== '') throw new ConfigError(key, 'must not contain credentials; the replicas use cluster.secret');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') throw new ConfigError(key, 'must be a base URL with no path, e.g. "http://10.0.0.2:5000"');
  return url.origin;
}

function dnsName(value: unknown): { host: string; port: number } {
  const text = nonEmptyString(value, 'cluster.dns');
  const m = /^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port > 0 && port < 65536)) throw new ConfigError('cluster.dns', 'must be "name:port", e.g. "regmirror-peers.registry.svc.cluster.local:5000"');
  return { host: m[1]!, port };
}
