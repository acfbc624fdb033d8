import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';
import { boolean, optionalString, type Attempt, type Json } from './fields.js';

/**
 * Where one upstream's requests leave the host: straight out, or through a proxy chosen by the
 * target's scheme unless the target's host is in `noProxy`. The token realm and storage redirects
 * make the same choice for their own hosts.
 */
export interface UpstreamProxy {
  /** From HTTPS_PROXY/HTTP_PROXY/NO_PROXY, from the upstream's own `proxy`, or `"none"`. */
  readonly source: 'env' | 'config' | 'none';
  /** For http:// targets; undefined: direct. */
  readonly http: URL | undefined;
  /** For https:// targets; undefined: direct. */
  readonly https: URL | undefined;
  /** NO_PROXY entries, lower-case: `*`, a host (and its subdomains), `.domain`, `host:port`, an address or a CIDR range. */
  readonly noProxy: readonly string[];
}

/** A PEM file as read at config load: its path (for messages) and its text (what TLS is given). */
export interface PemFile {
  readonly file: string;
  readonly pem: string;
}

/** TLS toward one upstream (its registry, token realm and storage hosts). */
export interface UpstreamTls {
  /** `ca`: certificates trusted beside the built-in roots. */
  readonly ca: PemFile | undefined;
  /** `clientCert` and `clientKey`: presented to servers that ask for a client certificate. */
  readonly client: { readonly cert: PemFile; readonly key: PemFile } | undefined;
  /** `insecureSkipVerify`: no certificate check at all (warned at start, counted in /api/status). */
  readonly insecureSkipVerify: boolean;
}

export const NETWORK_KEYS = ['proxy', 'ca', 'clientCert', 'clientKey', 'insecureSkipVerify'];

const DIRECT: UpstreamProxy = { source: 'none', http: undefined, https: undefined, noProxy: [] };
const NO_TLS: UpstreamTls = { ca: undefined, client: undefined, insecureSkipVerify: false };

/**
 * `proxy`, `ca`, `clientCert`, `clientKey` and `insecureSkipVerify` of one upstream. The PEM files
 * are read and checked here, so `config check` and start-up name a broken one; an offline upstream
 * is never contacted, so nothing of it is read (the files need not travel to the disconnected side).
 */
export function parseUpstreamNetwork(u: Json, key: string, context: { baseDir: string; env: NodeJS.ProcessEnv; offline: boolean }, attempt: Attempt): { proxy: UpstreamProxy; tls: UpstreamTls } {
  if (context.offline) return { proxy: DIRECT, tls: NO_TLS };
  const proxy = attempt(() => parseProxy(u['proxy'], `${key}.proxy`, context.env), DIRECT);
  const file = (name: string) => readPemFile(optionalString(u[name], `${key}.${name}`), context.baseDir, `${key}.${name}`);
  const ca = attempt(() => readCaFile(u['ca'], context.baseDir, `${key}.ca`), undefined);
  const client = attempt(() => {
    // Which half is missing first: reading the other would only add a second, unhelpful error.
    if (u['clientCert'] !== undefined && u['clientKey'] === undefined) throw new ConfigError(`${key}.clientKey`, 'is required with clientCert');
    if (u['clientKey'] !== undefined && u['clientCert'] === undefined) throw new ConfigError(`${key}.clientCert`, 'is required with clientKey');
    return clientPair(file('clientCert'), file('clientKey'), key);
  }, undefined);
  const insecureSkipVerify = attempt(() => boolean(u['insecureSkipVerify'] ?? false, `${key}.insecureSkipVerify`), false);
  return { proxy, tls: { ca, client, insecureSkipVerify } };
}

/** A URL with its user information (a proxy's or registry's credentials) replaced: what logs and /api/status show. */
export function redactedUrl(url: URL): string {
  if (url.username === '' && url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.username = '[redacted]';
  copy.password = '';
  return copy.href.replace('%5Bredacted%5D', '[redacted]');
}

function parseProxy(value: unknown, key: string, env: NodeJS.ProcessEnv): UpstreamProxy {
  if (value === 'none') return DIRECT;
  if (value !== undefined) {
    if (typeof value !== 'string') throw new ConfigError(key, 'must be a proxy URL such as "http://proxy.example:3128", or "none"');
    const url = proxyUrl(value, key);
    return { source: 'config', http: url, https: url, noProxy: [] };
  }
  // Lower-case first, as curl and undici read them; HTTPS_PROXY falls back to HTTP_PROXY as undici's does.
  const read = (name: string) => [env[name.toLowerCase()], env[name]].find((v) => v !== undefined && v.trim() !== '')?.trim();
  const httpRaw = read('HTTP_PROXY');
  const httpsRaw = read('HTTPS_PROXY');
  const http = httpRaw === undefined ? undefined : proxyUrl(httpRaw, 'HTTP_PROXY (environment)');
  const https = httpsRaw === undefined ? http : proxyUrl(httpsRaw, 'HTTPS_PROXY (environment)');
  const noProxy = (read('NO_PROXY') ?? '').toLowerCase().split(/[\s,]+/).filter((e) => e !== '');
  return http === undefined && https === undefined ? DIRECT : { source: 'env', http, https, noProxy };
}

function proxyUrl(value: string, key: string): URL {
  // `proxy.example:3128` is how many hosts set HTTP_PROXY; curl reads it as http://.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(key, 'is not a valid proxy URL (e.g. "http://proxy.example:3128")');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(key, `must be an http:// or https:// proxy URL, not ${url.protocol}`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new ConfigError(key, 'must be a proxy origin such as "http://user:password@proxy.example:3128", without a path or query');
  }
  return url;
}

/** A CA bundle named by `value` (relative to the config file), checked to hold only valid certificates. */
export function readCaFile(value: unknown, baseDir: string, key: string): PemFile | undefined {
  const read = readPemFile(optionalString(value, key), baseDir, key);
  if (read !== undefined) certificates(read, key);
  return read;
}

function readPemFile(name: string | undefined, baseDir: string, key: string): PemFile | undefined {
  if (name === undefined) return undefined;
  const file = path.resolve(baseDir, name);
  try {
    return { file, pem: readFileSync(file, 'utf8') };
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle; a file with none, or a block that does not parse, is a config error. */
function certificates({ file, pem }: PemFile, key: string): X509Certificate[] {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) throw new ConfigError(key, `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new ConfigError(key, `certificate ${i + 1} in ${file} is not a valid PEM certificate`);
    }
  });
}

function clientPair(cert: PemFile | undefined, key: PemFile | undefined, upstreamKey: string): UpstreamTls['client'] {
  if (cert === undefined || key === undefined) return undefined;
  const [leaf] = certificates(cert, `${upstreamKey}.clientCert`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.pem);
  } catch {
    throw new ConfigError(`${upstreamKey}.clientKey`, `${key.file} is not an unencrypted PEM private key`);
  }
  if (leaf !== undefined && !leaf.checkPrivateKey(privateKey)) throw new ConfigError(`${upstreamKey}.clientKey`, `${key.file} is not the key of ${cert.file}`);
  return { cert, key };
}
