import type { SyncConfig } from './sync.js';

/** The validated, defaulted configuration every part receives. Built only by config/load.ts. */
export interface UpstreamConfig {
  /** The key in `upstreams`, e.g. "docker.io"; what `?ns=` and path prefixes name. */
  readonly name: string;
  /** Origin (and optional base path) of the registry API, e.g. https://registry-1.docker.io */
  readonly url: URL;
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
}

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

export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  readonly storage: {
    readonly path: string;
    /** Bytes. */
    readonly maxSize: number;
    readonly metadata: MetadataConfig;
    /** Repositories whose manifests and blobs are never evicted; their bytes count against maxSize. */
    readonly pin: readonly RepositoryPattern[];
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
}
