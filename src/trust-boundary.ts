import type { AccessController } from './access/index.js';
import { accessControllerFor, Credentials, loadSigningKey, securityWarnings, TokenService, type CredentialSources } from './auth/index.js';
import type { Config } from './config/index.js';
import { TokenEndpoint, type CanRead, type TokenEndpointOptions } from './http/index.js';
import { TrustedProxies, type AuditSink, type Logger } from './observability/index.js';
import type { RouteContext } from './oci/index.js';

export interface TrustOptions extends CredentialSources {
  /** Replaces the controller built from the config (tests). */
  readonly access?: AccessController;
  /** With `auth`: what an identity may read, asked per token scope. Default: the read policy. */
  readonly canRead?: CanRead;
  /** With `auth`: the identity a refresh token names, as it is now. Default: the htpasswd file and token list. */
  readonly refreshIdentity?: TokenEndpointOptions['refreshIdentity'];
}

/**
 * The trust boundary, composed: who a credential is (htpasswd users, robot tokens, the mirror's own
 * bearer tokens), what they may read (the read policy), and the token endpoint between the two.
 * Without `auth` the controller lets everyone read everything and there is no token endpoint.
 */
export class TrustBoundary {
  /** htpasswd users and robot tokens; always built, so `regmirror token` works before `auth` is on. */
  readonly credentials: Credentials;
  /** With `auth`: issues the mirror's bearer tokens and verifies them. */
  readonly tokens: TokenService | undefined;
  readonly access: AccessController;
  readonly tokenEndpoint: TokenEndpoint | undefined;
  readonly #warnings: ReturnType<typeof securityWarnings>;

  constructor(
    config: Config,
    deps: { readonly logger: Logger; readonly now: () => number; readonly audit: AuditSink; readonly routes: RouteContext },
    options: TrustOptions,
  ) {
    const { auth, storage } = config;
    const credentials = (this.credentials = new Credentials({ auth, storageRoot: storage.path, upstreams: config.upstreams, logger: deps.logger, now: deps.now }));
    const tokens = (this.tokens = auth && new TokenService({ key: () => loadSigningKey({ configured: auth.signingKey, storageRoot: storage.path }), ttlMs: auth.tokenTTLms, now: deps.now }));
    const built = accessControllerFor(config, {
      passwords: options.passwords ?? credentials,
      bearer: options.bearer ?? tokens,
      tokenPatterns: options.tokenPatterns ?? ((name) => credentials.tokens.readPatterns(name)),
      currentIdentity: options.currentIdentity ?? ((identity) => credentials.current(identity)),
      ...(options.challenge === undefined ? {} : { challenge: options.challenge }),
    });
    this.access = options.access ?? built.controller;
    this.#warnings = securityWarnings(config, built.policy);
    const policy = built.policy;
    this.tokenEndpoint =
      tokens &&
      policy &&
      new TokenEndpoint({
        tokens,
        passwords: options.passwords ?? credentials,
        canRead: options.canRead ?? ((identity, upstream, repository) => policy.canRead(identity, upstream, repository)),
        routes: deps.routes,
        audit: deps.audit,
        refreshIdentity: options.refreshIdentity ?? (async (identity) => credentials.current(identity)),
        proxies: new TrustedProxies(config.access.trustedProxies),
      });
  }

  /** With the storage held: the token file and htpasswd (a broken one stops start-up). */
  open(): Promise<void> {
    return this.credentials.open();
  }

  /** Before listening: the signing key (generated on first start) and what the config leaves open. */
  async start(logger: Logger): Promise<void> {
    const key = await this.tokens?.open();
    if (key !== undefined) logger.info({ file: key.file, kid: key.kid, alg: key.alg }, key.generated ? 'token signing key generated' : 'token signing key loaded');
    for (const w of this.#warnings) logger.warn(w.fields, w.message);
  }

  close(): Promise<void> {
    return this.credentials.close();
  }
}
