import t from 'tap';
import * as access from '../../src/access/index.js';
import { HtpasswdError, RobotTokenError, TokenFileError } from '../../src/auth/index.js';
import { AccessChallenge, AccessDenied } from '../../src/access/index.js';
import * as cache from '../../src/cache/index.js';
import { PinBudgetError } from '../../src/cache/index.js';
import { toErrorAnswer } from '../../src/http/index.js';
import type { NotFoundKind } from '../../src/http/errors.js';
import * as mirror from '../../src/mirror/index.js';
import * as oci from '../../src/oci/index.js';
import * as policy from '../../src/policy/index.js';
import { PolicyRefusal } from '../../src/policy/index.js';
import { ManifestGraphTooDeepError, OciError, parseDigest, parseRoute, RepositoryGlobError, unsatisfiedContentRange } from '../../src/oci/index.js';
import * as storage from '../../src/storage/index.js';
import { DigestMismatchError, MetadataUnavailableError, SizeMismatchError, StorageError } from '../../src/storage/index.js';
import * as upstream from '../../src/upstream/index.js';
import { UpstreamError, type UpstreamFailure } from '../../src/upstream/index.js';

interface Want {
  readonly status: number;
  readonly code: string;
  readonly headers?: Record<string, string>;
  readonly unexpected?: boolean;
}

const KINDS: readonly NotFoundKind[] = ['manifest', 'blob', 'tags', 'other'];
const digest = parseDigest(`sha256:${'ab'.repeat(32)}`);

// Every failure, keyed so that a new UpstreamFailure value does not compile until it has a row.
const UPSTREAM: Readonly<Record<UpstreamFailure, (kind: NotFoundKind) => Want>> = {
  'not-found': (kind) => ({ status: 404, code: { manifest: 'MANIFEST_UNKNOWN', blob: 'BLOB_UNKNOWN', tags: 'NAME_UNKNOWN', other: 'NAME_UNKNOWN' }[kind] }),
  // The mirror's own credentials failed: a gateway error, never a 401 that would send clients to log in.
  unauthorized: () => ({ status: 502, code: 'UNAVAILABLE', headers: {} }),
  denied: () => ({ status: 403, code: 'DENIED' }),
  'rate-limited': () => ({ status: 429, code: 'TOOMANYREQUESTS', headers: { 'retry-after': '60' } }),
  unavailable: () => ({ status: 503, code: 'UNAVAILABLE', headers: { 'retry-after': '10' } }),
  'bad-response': () => ({ status: 502, code: 'UNAVAILABLE', headers: {} }),
};

type Row = readonly [label: string, err: Error, want: Want];

const internal: Want = { status: 500, code: 'UNKNOWN', headers: {}, unexpected: true };

/** Every Error class the request path can meet, by exported name, with what a client gets for it. */
const CLASSES: Readonly<Record<string, readonly Row[]>> = {
  UpstreamError: (Object.keys(UPSTREAM) as UpstreamFailure[]).flatMap((failure) =>
    KINDS.map((kind) => [`${failure} × ${kind}`, new UpstreamError('up.example', failure, 'boom'), UPSTREAM[failure](kind)] satisfies Row),
  ),
  OciError: [
    ['table status', new OciError('MANIFEST_UNKNOWN', 'no such manifest'), { status: 404, code: 'MANIFEST_UNKNOWN', headers: {} }],
    ['overridden status', new OciError('UNSUPPORTED', 'not found', { status: 404 }), { status: 404, code: 'UNSUPPORTED' }],
    ['push refused with Allow', caught(() => parseRoute('PUT', '/v2/a/manifests/1', { upstreams: new Map(), aliases: new Map(), defaultUpstream: 'x' })), { status: 405, code: 'UNSUPPORTED', headers: { allow: 'GET, HEAD' } }],
    ['range with Content-Range', new OciError('RANGE_INVALID', 'no', { headers: { 'content-range': unsatisfiedContentRange(10) } }), { status: 416, code: 'RANGE_INVALID', headers: { 'content-range': 'bytes */10' } }],
  ],
  AccessChallenge: [
    ['challenge', new AccessChallenge('log in', 'Bearer realm="https://m.example/token",service="m.example"'), { status: 401, code: 'UNAUTHORIZED', headers: { 'www-authenticate': 'Bearer realm="https://m.example/token",service="m.example"' } }],
  ],
  PolicyRefusal: [['policy', new PolicyRefusal('cve', 'digest sha256:00 is denied'), { status: 403, code: 'DENIED', headers: {}, unexpected: false }]],
  AccessDenied: [['denied', new AccessDenied('team/b is not yours', 'alice'), { status: 403, code: 'DENIED', headers: {}, unexpected: false }]],
  MetadataUnavailableError: [['metadata down', new MetadataUnavailableError('redis gone'), { status: 503, code: 'UNAVAILABLE', headers: { 'retry-after': '10' }, unexpected: false }]],
  StorageError: [['storage', new StorageError('disk'), { ...internal, headers: {} }]],
  // Fetched bytes that failed verification before the first byte went out: the upstream's fault.
  DigestMismatchError: [['digest mismatch', new DigestMismatchError(digest, 'sha256:00'), { status: 502, code: 'UNAVAILABLE', headers: {}, unexpected: false }]],
  SizeMismatchError: [['size mismatch', new SizeMismatchError(1, 2), { status: 502, code: 'UNAVAILABLE', headers: {}, unexpected: false }]],
  PinBudgetError: [['pin budget', new PinBudgetError(2, 1), internal]],
  // Raised while loading config, never at request time: the generic answer.
  RepositoryGlobError: [['glob', new RepositoryGlobError('bad glob'), internal]],
  // Raised by sync and the admin commands walking stored manifests, never while serving a request.
  ManifestGraphTooDeepError: [['graph too deep', new ManifestGraphTooDeepError(4), internal]],
  // Raised at start-up (a bad htpasswd or token file) and by token commands, never while serving a request.
  HtpasswdError: [['htpasswd', new HtpasswdError('line 2 is not "user:hash"'), internal]],
  TokenFileError: [['token file', new TokenFileError('not JSON'), internal]],
  RobotTokenError: [['token command', new RobotTokenError('no token named "x"'), internal]],
};

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

/** Error classes exported by the modules whose code runs while a request is served. */
function exportedErrorClasses(): string[] {
  const modules: Record<string, unknown>[] = [oci, storage, cache, upstream, access, mirror, policy];
  const names = modules.flatMap((m) => Object.entries(m).filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error).map(([k]) => k));
  return [...new Set(names)].sort();
}

t.test('every exported error class has rows in the mapping table', async (t) => {
  const exported = exportedErrorClasses();
  t.ok(exported.length >= 10, `found ${exported.join(', ')}`);
  for (const name of exported) t.ok(CLASSES[name]?.length, `${name} is mapped in this table`);
});

t.test('each error maps to its status, OCI code and headers', async (t) => {
  for (const [name, rows] of Object.entries(CLASSES)) {
    for (const [label, err, want] of rows) {
      t.equal(err.constructor.name, name, `${label} is a ${name}`);
      for (const kind of KINDS) {
        if (name === 'UpstreamError' && !label.endsWith(`× ${kind}`)) continue;
        const answer = toErrorAnswer(err, kind);
        t.match(answer, { status: want.status, code: want.code, unexpected: want.unexpected ?? false }, `${name} ${label} (${kind})`);
        if (want.headers !== undefined) t.same(answer.headers, want.headers, `${name} ${label} (${kind}) headers`);
      }
    }
  }
});

t.test('an upstream not-found passes its own not-found code through', async (t) => {
  const err = new UpstreamError('up.example', 'not-found', 'gone', { ociCode: 'NAME_UNKNOWN' });
  t.equal(toErrorAnswer(err, 'manifest').code, 'NAME_UNKNOWN');
  t.equal(toErrorAnswer(new UpstreamError('up.example', 'not-found', 'gone', { ociCode: 'DENIED' }), 'blob').code, 'BLOB_UNKNOWN', 'only not-found codes pass');
  t.same(toErrorAnswer(new UpstreamError('up.example', 'rate-limited', 'slow', { retryAfter: 7 }), 'other').headers, { 'retry-after': '7' });
});

t.test("the mirror's own credentials: refused, withheld, or none configured, each said as what happened", async (t) => {
  const answer = (credentials: upstream.CredentialProblem | undefined) =>
    toErrorAnswer(new UpstreamError('docker.io', 'unauthorized', 'GET https://r.example/v2/a/manifests/1: 401', credentials === undefined ? { status: 401 } : { status: 401, credentials }), 'manifest');
  t.match(answer('rejected'), { status: 502, code: 'UNAVAILABLE', message: /^the mirror's credentials for docker\.io were rejected/ });
  t.match(answer('withheld'), { status: 502, code: 'UNAVAILABLE', message: /^the mirror's credentials for docker\.io were withheld from a token realm outside the upstream's domain/ });
  t.match(answer('none'), { status: 403, code: 'DENIED', message: /refused anonymous access/ });
  t.notMatch(answer('none').message, /credentials for docker\.io were/, 'no credentials were sent, so none were rejected');
  t.match(answer(undefined), { status: 502, code: 'UNAVAILABLE', message: /cannot answer/ });
  for (const c of ['rejected', 'withheld', 'none', undefined] as const) t.notMatch(answer(c).message, /r\.example/, 'no upstream address');
});

t.test('anything unknown is a 500 that carries no message of its own', async (t) => {
  for (const err of [new Error('secret detail'), new TypeError('x'), 'a string', undefined]) {
    const answer = toErrorAnswer(err, 'manifest');
    t.match(answer, internal);
    t.notMatch(answer.message, /secret/);
  }
});
