import t from 'tap';
import { parseRoute, resolveTarget, type RouteContext } from '../../src/oci/index.js';

const hex = 'ab'.repeat(32);
const dg = `sha256:${hex}`;

const ctx: RouteContext = {
  upstreams: new Map([
    ['docker.io', { officialLibrary: true }],
    ['ghcr.io', { officialLibrary: false }],
    ['127.0.0.1:5001', { officialLibrary: false }],
  ]),
  aliases: new Map([
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
  ]),
  defaultUpstream: 'docker.io',
};
const ghcrDefault: RouteContext = { ...ctx, defaultUpstream: 'ghcr.io' };

const tag = (x: string) => ({ kind: 'tag', tag: x });

t.test('outside /v2 → undefined (even for other methods)', async (t) => {
  for (const url of ['/', '/healthz', '/metrics', '/v2x', '/v20/', '/v1/_ping', '/V2/', 'http://host/v2/', '*', '', '/v2%2f']) {
    t.equal(parseRoute('GET', url, ctx), undefined, url);
    t.equal(parseRoute('DELETE', url, ctx), undefined, `DELETE ${url}`);
  }
  t.equal(parseRoute('GET', '/healthz?x=/v2/', ctx), undefined, 'query does not count as path');
});

t.test('base and catalog', async (t) => {
  t.same(parseRoute('GET', '/v2', ctx), { kind: 'base' });
  t.same(parseRoute('GET', '/v2/', ctx), { kind: 'base' });
  t.same(parseRoute('HEAD', '/v2/?ns=nowhere.example', ctx), { kind: 'base' }, 'ns is not checked on the base route');
  t.strictSame(parseRoute('GET', '/v2/_catalog', ctx), { kind: 'catalog', n: undefined, last: undefined, view: { kind: 'all' } });
  t.strictSame(parseRoute('GET', '/v2/_catalog?n=10&last=library/alpine', ctx), { kind: 'catalog', n: 10, last: 'library/alpine', view: { kind: 'all' } });
  t.strictSame(parseRoute('GET', '/v2/_catalog?ns=index.docker.io', ctx), { kind: 'catalog', n: undefined, last: undefined, view: { kind: 'ns', upstream: 'docker.io', ns: 'index.docker.io' } });
  t.strictSame(parseRoute('GET', '/v2/ghcr.io/_catalog?n=1', ctx), { kind: 'catalog', n: 1, last: undefined, view: { kind: 'prefix', upstream: 'ghcr.io', prefix: 'ghcr.io' } });
  const both = parseRoute('GET', '/v2/ghcr.io/_catalog?ns=docker.io', ctx);
  t.strictSame(both, { kind: 'catalog', n: undefined, last: undefined, view: { kind: 'ns', upstream: 'docker.io', ns: 'docker.io' } }, '?ns= wins over a path prefix, as for repositories');
  t.throws(() => parseRoute('GET', '/v2/_catalog?ns=nowhere.example', ctx), { code: 'NAME_UNKNOWN', status: 404 });
  t.throws(() => parseRoute('GET', '/v2/nowhere.example/_catalog', ctx), { code: 'NAME_UNKNOWN', status: 404 });
  t.throws(() => parseRoute('GET', '/v2/a/b/_catalog', ctx), { code: 'UNSUPPORTED', status: 404 }, 'a prefix is one upstream name, nothing deeper');
  t.throws(() => parseRoute('GET', '/v2/_catalog?n=x', ctx), { code: 'PAGINATION_NUMBER_INVALID', status: 400 });
  t.throws(() => parseRoute('GET', `/v2/_catalog?last=${'a'.repeat(257)}`, ctx), { code: 'NAME_INVALID', status: 400 });
});

// [label, url, expected route (subset of fields)]
const routes: [string, string, Record<string, unknown>][] = [
  ['manifest by tag', '/v2/library/alpine/manifests/latest', { kind: 'manifest', upstream: 'docker.io', name: 'library/alpine', clientName: 'library/alpine', ns: undefined, reference: tag('latest') }],
  ['manifest by digest', `/v2/library/alpine/manifests/${dg}`, { kind: 'manifest', reference: { kind: 'digest', digest: dg } }],
  ['blob', `/v2/library/alpine/blobs/${dg}`, { kind: 'blob', name: 'library/alpine', digest: dg }],
  ['tags', '/v2/library/alpine/tags/list', { kind: 'tags', name: 'library/alpine', n: undefined, last: undefined }],
  ['tags with n and last', '/v2/library/alpine/tags/list?n=2&last=3.18', { kind: 'tags', n: 2, last: '3.18' }],
  ['tags n=0', '/v2/library/alpine/tags/list?n=0', { kind: 'tags', n: 0 }],
  ['tags n=10000', '/v2/library/alpine/tags/list?n=10000', { kind: 'tags', n: 10000 }],
  ['tags n leading zeros', '/v2/library/alpine/tags/list?n=0007', { kind: 'tags', n: 7 }],
  ['tags empty last', '/v2/library/alpine/tags/list?last=', { kind: 'tags', last: undefined }],
  ['tags last is data', '/v2/library/alpine/tags/list?last=%2F..%2Fx%20y', { kind: 'tags', last: '/../x y' }],
  ['tags last 256', `/v2/library/alpine/tags/list?last=${'a'.repeat(256)}`, { kind: 'tags', last: 'a'.repeat(256) }],
  ['referrers', `/v2/library/alpine/referrers/${dg}`, { kind: 'referrers', digest: dg, artifactType: undefined, page: '' }],
  ['referrers with artifactType', `/v2/library/alpine/referrers/${dg}?artifactType=application%2Fvnd.example%2Bjson`, { kind: 'referrers', artifactType: 'application/vnd.example+json' }],
  ['unknown query params ignored', '/v2/library/alpine/manifests/v1?foo=bar&n=zzz', { kind: 'manifest', reference: tag('v1') }],
  // right split
  ['right split manifests', '/v2/a/manifests/b/manifests/latest', { kind: 'manifest', name: 'a/manifests/b', reference: tag('latest') }],
  ['right split blobs in name', `/v2/a/blobs/b/blobs/${dg}`, { kind: 'blob', name: 'a/blobs/b', digest: dg }],
  ['name with tags component', '/v2/a/tags/b/tags/list', { kind: 'tags', name: 'a/tags/b' }],
  ['name ending in manifests, tags list', '/v2/a/manifests/tags/list', { kind: 'tags', name: 'a/manifests' }],
  ['name with tags/list inside', '/v2/a/tags/list/manifests/v1', { kind: 'manifest', name: 'a/tags/list', reference: tag('v1') }],
  ['name with referrers component', '/v2/referrers/x/manifests/v1', { kind: 'manifest', name: 'referrers/x' }],
  ['manifest tag named manifests', '/v2/a/manifests/manifests', { kind: 'manifest', name: 'a', reference: tag('manifests') }],
  ['blobs/uploads in name then manifests', '/v2/a/blobs/uploads/manifests/v1', { kind: 'manifest', name: 'a/blobs/uploads' }],
  // library mapping
  ['library mapping', '/v2/alpine/manifests/3.19', { kind: 'manifest', upstream: 'docker.io', name: 'library/alpine', clientName: 'alpine' }],
  ['no mapping for two segments', '/v2/team/app/manifests/1', { name: 'team/app' }],
  ['no mapping on a non-library default', '/v2/alpine/manifests/1', { name: 'library/alpine' }],
  // ns
  ['ns selects upstream', '/v2/o/r/manifests/v1?ns=ghcr.io', { upstream: 'ghcr.io', name: 'o/r', clientName: 'o/r', ns: 'ghcr.io' }],
  ['ns one segment on non-library upstream', '/v2/solo/manifests/v1?ns=ghcr.io', { upstream: 'ghcr.io', name: 'solo' }],
  ['ns docker.io maps library', '/v2/alpine/manifests/v1?ns=docker.io', { upstream: 'docker.io', name: 'library/alpine', ns: 'docker.io' }],
  ['ns alias', '/v2/alpine/manifests/v1?ns=index.docker.io', { upstream: 'docker.io', name: 'library/alpine', ns: 'index.docker.io' }],
  ['ns with port', '/v2/x/y/tags/list?ns=127.0.0.1:5001', { kind: 'tags', upstream: '127.0.0.1:5001', name: 'x/y', ns: '127.0.0.1:5001' }],
  ['ns percent-encoded port in query', '/v2/x/y/tags/list?ns=127.0.0.1%3A5001', { upstream: '127.0.0.1:5001' }],
  ['ns: path prefix not stripped', '/v2/ghcr.io/o/r/manifests/v1?ns=ghcr.io', { upstream: 'ghcr.io', name: 'ghcr.io/o/r', clientName: 'ghcr.io/o/r' }],
  ['first ns wins', '/v2/o/r/manifests/v1?ns=ghcr.io&ns=docker.io', { upstream: 'ghcr.io' }],
  // prefix routing
  ['prefix routing', '/v2/ghcr.io/o/r/manifests/v1', { upstream: 'ghcr.io', name: 'o/r', clientName: 'ghcr.io/o/r', ns: undefined }],
  ['prefix routing one segment, no library', '/v2/ghcr.io/solo/blobs/' + dg, { kind: 'blob', upstream: 'ghcr.io', name: 'solo' }],
  ['prefix routing to library upstream', '/v2/docker.io/alpine/manifests/v1', { upstream: 'docker.io', name: 'library/alpine', clientName: 'docker.io/alpine' }],
  ['prefix alias', '/v2/index.docker.io/library/alpine/manifests/v1', { upstream: 'docker.io', name: 'library/alpine', clientName: 'index.docker.io/library/alpine' }],
  ['prefix with port', '/v2/127.0.0.1:5001/x/tags/list', { kind: 'tags', upstream: '127.0.0.1:5001', name: 'x', clientName: '127.0.0.1:5001/x' }],
  ['name equal to an upstream, nothing after', '/v2/ghcr.io/manifests/v1', { upstream: 'docker.io', name: 'library/ghcr.io', clientName: 'ghcr.io' }],
  ['unconfigured host-like first segment', '/v2/quay.io/o/r/manifests/v1', { upstream: 'docker.io', name: 'quay.io/o/r' }],
  ['HEAD', '/v2/library/alpine/manifests/latest', { kind: 'manifest' }],
];

t.test('repository routes', async (t) => {
  for (const [label, url, want] of routes) t.match(parseRoute('GET', url, ctx), want, label);
  t.match(parseRoute('HEAD', `/v2/a/blobs/${dg}`, ctx), { kind: 'blob', name: 'library/a' });
  t.match(parseRoute('GET', '/v2/alpine/manifests/1', ghcrDefault), { upstream: 'ghcr.io', name: 'alpine' }, 'library mapping off');
  t.match(parseRoute('GET', '/v2/docker.io/alpine/manifests/1', ghcrDefault), { upstream: 'docker.io', name: 'library/alpine' }, 'mapping follows the chosen upstream');
});

t.test('exact route shapes', async (t) => {
  t.same(parseRoute('GET', '/v2/alpine/tags/list?n=1&ns=docker.io', ctx), {
    kind: 'tags',
    upstream: 'docker.io',
    name: 'library/alpine',
    clientName: 'alpine',
    ns: 'docker.io',
    n: 1,
    last: undefined,
  });
  t.same(parseRoute('GET', `/v2/ghcr.io/o/r/referrers/${dg}?artifactType=x`, ctx), {
    kind: 'referrers',
    upstream: 'ghcr.io',
    name: 'o/r',
    clientName: 'ghcr.io/o/r',
    ns: undefined,
    digest: dg,
    artifactType: 'x',
    page: '',
  });
});

t.test('read-only: 405 before anything else', async (t) => {
  for (const method of ['PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'get', 'CONNECT']) {
    for (const url of ['/v2/', '/v2/library/alpine/manifests/latest', '/v2/a/blobs/uploads/', '/v2/BAD%2e/manifests/x', '/v2/_catalog', '/v2/nope']) {
      t.throws(() => parseRoute(method, url, ctx), { name: 'OciError', code: 'UNSUPPORTED', status: 405, headers: { allow: 'GET, HEAD' } }, `${method} ${url}`);
    }
  }
});

// [label, url, code, status, message]
const errors: [string, string, string, number, RegExp][] = [
  ['percent in name', '/v2/%2e%2e/manifests/latest', 'NAME_INVALID', 400, /percent-encoding/],
  ['percent in reference', '/v2/a/manifests/la%74est', 'NAME_INVALID', 400, /percent/],
  ['percent in digest', `/v2/a/blobs/sha256%3A${hex}`, 'NAME_INVALID', 400, /percent/],
  ['percent in unknown path', '/v2/%', 'NAME_INVALID', 400, /percent/],
  ['uppercase name', '/v2/Library/alpine/manifests/latest', 'NAME_INVALID', 400, /lowercase/],
  ['dotdot name', '/v2/../etc/manifests/latest', 'NAME_INVALID', 400, /invalid repository name/],
  ['empty component', '/v2/a//b/manifests/latest', 'NAME_INVALID', 400, /invalid repository name/],
  ['empty name', '/v2/manifests/latest', 'NAME_INVALID', 400, /empty/],
  ['empty name tags', '/v2/tags/list', 'NAME_INVALID', 400, /empty/],
  ['leading slash name', '//v2/x/manifests/a', 'NAME_INVALID', 0, /./],
  ['name too long after library mapping', `/v2/${'a'.repeat(250)}/manifests/v1`, 'NAME_INVALID', 400, /258 characters/],
  ['name 256', `/v2/x/${'a'.repeat(254)}/manifests/v1`, 'NAME_INVALID', 400, /256 characters/],
  ['prefix with empty rest', '/v2/ghcr.io//manifests/v1', 'NAME_INVALID', 400, /invalid repository name/],
  // A reference that cannot name a manifest: 404 like any manifest that does not exist.
  ['bad tag', `/v2/a/manifests/${'t'.repeat(129)}`, 'MANIFEST_UNKNOWN', 404, /invalid tag/],
  ['tag with a leading dot', '/v2/a/manifests/.INVALID_MANIFEST_NAME', 'MANIFEST_UNKNOWN', 404, /invalid tag/],
  ['empty reference', '/v2/a/manifests/', 'MANIFEST_UNKNOWN', 404, /invalid tag/],
  ['bad digest ref', '/v2/a/manifests/sha256:abc', 'DIGEST_INVALID', 400, /64 hex/],
  ['blob by tag', '/v2/a/blobs/latest', 'DIGEST_INVALID', 400, /not a digest/],
  ['blob uppercase digest', `/v2/a/blobs/sha256:${hex.toUpperCase()}`, 'DIGEST_INVALID', 400, /lowercase/],
  ['referrers bad digest', '/v2/a/referrers/md5:abc', 'DIGEST_INVALID', 400, /not supported/],
  ['unknown ns', '/v2/a/manifests/v1?ns=quay.io', 'NAME_UNKNOWN', 404, /"quay\.io" \(ns\) is not mirrored/],
  ['empty ns', '/v2/a/manifests/v1?ns=', 'NAME_UNKNOWN', 404, /""/],
  ['ns is not a URL', '/v2/a/manifests/v1?ns=http://evil.example/', 'NAME_UNKNOWN', 404, /evil/],
  ['n negative', '/v2/a/tags/list?n=-1', 'PAGINATION_NUMBER_INVALID', 400, /from 0 to 10000/],
  ['n too big', '/v2/a/tags/list?n=10001', 'PAGINATION_NUMBER_INVALID', 400, /10001/],
  ['n very big', '/v2/a/tags/list?n=99999999999999999999', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['n empty', '/v2/a/tags/list?n=', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['n float', '/v2/a/tags/list?n=1.5', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['n exponent', '/v2/a/tags/list?n=1e3', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['n hex', '/v2/a/tags/list?n=0x10', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['n plus', '/v2/a/tags/list?n=%2B5', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['n space', '/v2/a/tags/list?n=+5', 'PAGINATION_NUMBER_INVALID', 400, /n must be/],
  ['last too long', `/v2/a/tags/list?last=${'a'.repeat(257)}`, 'TAG_INVALID', 400, /256/],
  // unrecognised paths: 404, never 500
  ['unknown api', '/v2/foo', 'UNSUPPORTED', 404, /no such registry API/],
  ['unknown api deep', '/v2/foo/bar/baz', 'UNSUPPORTED', 404, /no such registry API/],
  ['catalog trailing slash', '/v2/_catalog/', 'UNSUPPORTED', 404, /no such registry API/],
  ['tags without list', '/v2/a/tags/', 'UNSUPPORTED', 404, /no such registry API/],
  ['tags list trailing slash', '/v2/a/tags/list/', 'UNSUPPORTED', 404, /no such registry API/],
  ['reference with slash', '/v2/a/manifests/b/c', 'UNSUPPORTED', 404, /no such registry API/],
  ['manifests without reference slash', '/v2/a/manifests', 'UNSUPPORTED', 404, /no such registry API/],
  ['upload session GET', '/v2/a/blobs/uploads/0b7c1d1e-uuid', 'UNSUPPORTED', 404, /uploads are not supported/],
  ['upload start GET', '/v2/a/blobs/uploads/', 'UNSUPPORTED', 404, /uploads/],
  ['upload no slash', '/v2/a/blobs/uploads', 'UNSUPPORTED', 404, /uploads/],
];

t.test('errors are 4xx OciErrors', async (t) => {
  for (const [label, url, code, status, message] of errors) {
    if (status === 0) {
      t.equal(parseRoute('GET', url, ctx), undefined, `${label}: not a /v2 path`);
      continue;
    }
    t.throws(() => parseRoute('GET', url, ctx), { name: 'OciError', code, status, message }, label);
  }
});

t.test('error messages do not echo huge input', async (t) => {
  const url = `/v2/${'A'.repeat(5000)}/manifests/v1`;
  t.throws(() => parseRoute('GET', url, ctx), { code: 'NAME_INVALID', message: /^.{0,200}$/s });
  t.throws(() => parseRoute('GET', `/v2/${'x/'.repeat(3000)}`, ctx), { code: 'UNSUPPORTED', message: /^.{0,200}$/s });
  t.throws(() => parseRoute('GET', `/v2/a/manifests/v1?ns=${'q'.repeat(5000)}`, ctx), { code: 'NAME_UNKNOWN', message: /^.{0,200}$/s });
});

t.test('resolveTarget alone: the name a client writes → (upstream, repository)', async (t) => {
  // [label, client name, ns, upstream, repository]
  const cases: [string, string, string | undefined, string, string][] = [
    ['default upstream', 'team/app', undefined, 'docker.io', 'team/app'],
    ['default upstream, library/', 'alpine', undefined, 'docker.io', 'library/alpine'],
    ['path prefix', 'ghcr.io/o/r', undefined, 'ghcr.io', 'o/r'],
    ['path prefix alias, library/', 'index.docker.io/alpine', undefined, 'docker.io', 'library/alpine'],
    ['path prefix on a non-library upstream', 'ghcr.io/solo', undefined, 'ghcr.io', 'solo'],
    ['?ns=', 'o/r', 'ghcr.io', 'ghcr.io', 'o/r'],
    ['?ns= alias, library/', 'alpine', 'registry-1.docker.io', 'docker.io', 'library/alpine'],
    ['?ns= keeps a prefix-like name', 'ghcr.io/o/r', 'ghcr.io', 'ghcr.io', 'ghcr.io/o/r'],
  ];
  for (const [label, name, ns, upstream, repository] of cases) {
    t.same(resolveTarget(ctx, name, ns), { upstream, name: repository, clientName: name, ns }, label);
  }
  t.same(resolveTarget(ghcrDefault, 'alpine', undefined), { upstream: 'ghcr.io', name: 'alpine', clientName: 'alpine', ns: undefined }, 'no library/ on a non-library default');
  t.throws(() => resolveTarget(ctx, 'o/r', 'quay.io'), { code: 'NAME_UNKNOWN', status: 404 }, 'an unmirrored ns is refused');
  t.throws(() => resolveTarget(ctx, 'Bad/Name', undefined), { code: 'NAME_INVALID' }, 'the resolved name is validated');
});
