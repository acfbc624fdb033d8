import { parseChallenges } from './challenge.js';
import { UpstreamError } from './errors.js';
import { describeUrl } from './redact.js';
import { discard, header } from './responses.js';
import { basicAuthorization, type TokenAuth } from './token-auth.js';
import type { Transport } from './transport.js';

/** What the configured credentials met: a realm or registry that took them, refused them, or never saw them. */
export type CredentialCheck =
  | { readonly verdict: 'none-configured'; readonly loginRequired: boolean }
  | { readonly verdict: 'accepted'; readonly how: 'token' | 'basic' }
  | { readonly verdict: 'rejected'; readonly detail: string }
  | { readonly verdict: 'withheld'; readonly detail: string }
  | { readonly verdict: 'not-asked' };

/** `GET /v2/` on one upstream, as `regmirror doctor` reports it. */
export interface ProbeReport {
  /** The probed URL, without secrets. */
  readonly url: string;
  readonly status: number;
  /** The answer carried Docker-Distribution-API-Version: something speaks the registry API there. */
  readonly registry: boolean;
  readonly credentials: CredentialCheck;
}

export interface ProbeDeps {
  readonly base: string;
  readonly transport: Transport;
  readonly tokens: TokenAuth;
  readonly credentials: { readonly username: string; readonly password: string } | undefined;
}

/**
 * The base endpoint without credentials, then what its challenge asks for with them: a token without
 * a scope for Bearer (what `docker login` asks), the same GET with Basic otherwise. Failures to connect
 * are thrown as the usual UpstreamError ("unavailable", with the code).
 */
export async function probeRegistry({ base, transport, tokens, credentials }: ProbeDeps): Promise<ProbeReport> {
  const url = new URL(`${base}/v2/`);
  const get = (authorization?: string) =>
    transport.send({ method: 'GET', url, authorization, followRedirects: false }, async (ex) => {
      discard(ex.body);
      return { status: ex.status, headers: ex.headers };
    });
  const first = await get();
  const report = { url: describeUrl(url), status: first.status, registry: header(first.headers, 'docker-distribution-api-version') !== undefined };
  if (credentials === undefined) return { ...report, credentials: { verdict: 'none-configured', loginRequired: first.status === 401 } };
  if (first.status !== 401) return { ...report, credentials: { verdict: 'not-asked' } };
  const challenges = parseChallenges(first.headers['www-authenticate']);
  const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.get('realm') !== undefined);
  if (bearer === undefined) {
    const again = await get(basicAuthorization(credentials.username, credentials.password));
    const verdict: CredentialCheck = again.status === 401 ? { verdict: 'rejected', detail: `GET ${report.url} with Basic credentials: 401` } : { verdict: 'accepted', how: 'basic' };
    return { ...report, credentials: verdict };
  }
  let realm: URL;
  try {
    realm = new URL(bearer.params.get('realm') ?? '');
  } catch {
    return { ...report, credentials: { verdict: 'rejected', detail: `the challenge names an invalid token realm` } };
  }
  try {
    const issued = await tokens.get({ realm, service: bearer.params.get('service') }, '');
    if (issued.credentialed) return { ...report, credentials: { verdict: 'accepted', how: 'token' } };
    return { ...report, credentials: { verdict: 'withheld', detail: `not sent to token realm ${describeUrl(realm)}: outside the upstream's domain or not https` } };
  } catch (err) {
    if (err instanceof UpstreamError && err.failure === 'unauthorized') return { ...report, credentials: { verdict: 'rejected', detail: err.message } };
    throw err;
  }
}
