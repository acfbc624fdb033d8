import type { ClusterConfig } from './cluster.js';
import type { SyncConfig } from './sync.js';
import type { SpaceFloor } from './units.js';
import type { UpstreamProxy, UpstreamTls } from './upstream-network.js';

/** The validated, defaulted configuration every part receives. Built only by config/load.ts. */
export interface UpstreamConfig {
  /** The key in `upstreams`, e.g. "docker.io"; what `?ns=` and path prefixes name. */
  readonly name: string;
  /**
   * Origin (and optional base path) of the registry API, e.g. https://registry-1.docker.io; undefined
   * only for an offline upstream, which is never contacted.
   */
  readonly url: URL | undefined;
  /**
   * `endpoints`: the URLs tried in order (a regional mirror first, the origin last), `url` among them;
   * absent where a caller builds a config by hand, which means `[url]`.
   */
  readonly endpoints?: readonly URL[];
  /** How long a failed endpoint is passed over while another serves (`endpointCooldown`, default 30s). */
  readonly endpointCooldownMs?: number;
  /**
   * Never contacted (an air-gapped site): what was imported or cached is served without revalidation
   * and anything else is not found at once. Its credentials are not resolved.
   */
  readonly offline: boolean;
  readonly username: string | undefined;
  /** Resolved from `password` or `passwordEnv` at start-up; never logged. */
  readonly password: string | undefined;
  /** Docker Hub semantics: a one-segment name gets `library/`. */
  readonly officialLibrary: boolean;
  /** Other names clients use for this registry (e.g. index.docker.io) in `?ns=`. */
  readonly aliases: readonly string[];
  readonly timeouts: {
    readonly connectMs: number;
    readonly headersMs: number;
    readonly bodyIdleMs: number;
  };
  /** Keep-alive connections kept per upstream origin. */
  readonly connections: number;
  /** No anonymous read, whatever `access.anonymous` says; an unauthorised request never pulls through. */
  readonly private: boolean;
  /** `proxy`, else HTTPS_PROXY/HTTP_PROXY/NO_PROXY as the environment had them at load. */
  readonly proxy: UpstreamProxy;
  /** `ca`, `clientCert`/`clientKey` and `insecureSkipVerify`, the PEM files already read. */
  readonly tls: UpstreamTls;
  /** `notFoundTTL`: how long a 404 from this upstream is answered again without asking it; 0 turns that off. */
  readonly notFoundTTLms: number;
}

/** An upstream the mirror talks to: what the HTTP client is built from. */
export type OnlineUpstreamConfig = UpstreamConfig & { readonly url: URL; readonly offline: false };

/** Where tags and manifest records live: the embedded log under storage.path, or a Redis several replicas share. */
export type MetadataConfig =
  | { readonly kind: 'embedded' }
  | {
      readonly kind: 'redis';
      /** As configured; may hold a password, so only `redactRedisUrl` of it is ever logged. */
      readonly url: string;
      /** Key prefix, so several deployments can share one Redis. */
      readonly namespace: string;
    };

/** `<upstream>/<repository glob>`, split: which repositories are pinned (or synced). */
export interface RepositoryPattern {
  /** A configured upstream name (aliases already resolved). */
  readonly upstream: string;
  /** A glob over repository names, see oci/repository-glob.ts. */
  readonly repository: string;
}

/** `tls`: the main listener (or `tls.listen`) speaks HTTPS; files are re-read when they change. */
export interface TlsConfig {
  /** Absolute paths of PEM files. */
  readonly cert: string;
  readonly key: string;
  /** CA bundle for optional client certificates; a verified certificate's subject CN is an identity. */
  readonly clientCA: string | undefined;
  /** Where HTTPS listens; undefined: `listen` itself serves HTTPS. With it, `listen` stays plain HTTP. */
  readonly listen: { readonly host: string; readonly port: number } | undefined;
}

/** `auth`: the mirror's own identities. Present means "default deny" for whatever `access` does not allow. */
export interface AuthConfig {
  /** Absolute path of a bcrypt htpasswd file, re-read when it changes. */
  readonly htpasswd: string | undefined;
  /** Group name → user names. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  /** The token endpoint's public URL (behind an ingress); undefined: derived from the request's Host. */
  readonly realm: string | undefined;
  /** PEM private key that signs tokens; undefined: one generated into the storage on first start. */
  readonly signingKey: string | undefined;
  /** Lifetime of issued bearer tokens (`auth.tokenTTL`, default 5m). */
  readonly tokenTTLms: number;
}

/** One `access.rules` entry: these identities may read these repositories. */
export interface AccessRule {
  readonly repositories: readonly RepositoryPattern[];
  readonly users: readonly string[];
  readonly groups: readonly string[];
  /** Robot token names. */
  readonly tokens: readonly string[];
  readonly actions: readonly ['read'];
}

export interface AccessConfig {
  /** Repositories anyone may read without credentials (never those of a private upstream). */
  readonly anonymous: readonly RepositoryPattern[];
  /** The most specific matching rule decides. */
  readonly rules: readonly AccessRule[];
  /** Who may see /api/status and the status page, and run admin actions over HTTP. */
  readonly admin: { readonly users: readonly string[]; readonly groups: readonly string[] };
  /** Who may scrape /metrics. */
  readonly metrics: 'anonymous' | 'admin';
  /** Addresses or CIDR ranges whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
}

/** `audit`: one JSON line per pull and security event, apart from the application log. */
export interface AuditConfig {
  /** An absolute file path, or "stdout". */
  readonly path: string;
  /** Rotate the file when it reaches this many bytes (`audit.maxSize`, default 100MiB). */
  readonly maxSize: number;
  /** Rotated files kept (`audit.maxFiles`, default 5). */
  readonly maxFiles: number;
}

/** One `policy` rule: what its repositories may never serve, and what must be signed to be served. */
export interface PolicyRule {
  /** `name`, else `policy[<i>]`: refusals name it. */
  readonly name: string;
  readonly repositories: readonly RepositoryPattern[];
  /** Digests, and tag patterns with `*`. */
  readonly deny: readonly string[];
  /** Absolute paths of PEM public keys; a manifest needs a cosign signature by one of them. */
  readonly requireSignature: { readonly keys: readonly string[] } | undefined;
  /** `warn`: log and count what would be refused, serve it anyway (for rollout). */
  readonly mode: 'enforce' | 'warn';
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  readonly storage: {
    readonly path: string;
    /** Bytes. */
    readonly maxSize: number;
    /** Free space the cache always leaves on its file system, whatever maxSize allows (`storage.minFree`, default 5%). */
    readonly minFree: SpaceFloor;
    readonly metadata: MetadataConfig;
    /** Repositories whose manifests and blobs are never evicted; their bytes count against maxSize. */
    readonly pin: readonly RepositoryPattern[];
    /** Large downloads are hashed on a worker thread instead of the main one (`storage.hashThread`). */
    readonly hashThread: boolean;
  };
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly defaultUpstream: string;
  /** How long a tag → digest answer is trusted before revalidation. */
  readonly manifestTTLms: number;
  readonly log: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  readonly metrics: {
    /** A second listener for /metrics, /api/status and the status page; undefined: the main listener serves them. */
    readonly listen: { readonly host: string; readonly port: number } | undefined;
    /** Repositories that get their own label on per-repository metrics; 0 turns those metrics off. */
    readonly perRepository: number;
  };
  /** On SIGTERM, how long in-flight transfers may run on before connections are closed. */
  readonly shutdownGraceMs: number;
  /** Repositories kept mirrored ahead of demand (src/sync). */
  readonly sync: SyncConfig;
  readonly tls: TlsConfig | undefined;
  /** Undefined: no identities, everyone reads everything (the behaviour before auth existed). */
  readonly auth: AuthConfig | undefined;
  readonly access: AccessConfig;
  readonly audit: AuditConfig | undefined;
  /** Empty: everything the upstreams hold is served. */
  readonly policy: readonly PolicyRule[];
  /** Undefined: a single replica. */
  readonly cluster: ClusterConfig | undefined;
}
