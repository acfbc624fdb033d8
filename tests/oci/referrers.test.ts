import t from 'tap';
import { nextReferrersPage, OciError, parseReferrersIndex, referrersIndex, referrersLink } from '../../src/oci/index.js';
import { referrersPage } from '../../src/oci/referrers.js';

const dg = `sha256:${'b'.repeat(64)}`;
const desc = (artifactType?: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: dg, size: 10, ...(artifactType ? { artifactType } : {}) });

t.test('parseReferrersIndex takes an index of descriptors and nothing else', async (t) => {
  t.same(parseReferrersIndex(JSON.stringify({ schemaVersion: 2, manifests: [desc('a/b')] })), [desc('a/b')]);
  t.same(parseReferrersIndex(Buffer.from('{"manifests":[]}')), []);
  for (const [bad, why] of [
    ['nope', /not JSON/],
    ['[]', /manifests array/],
    ['{"manifests":{}}', /manifests array/],
    [JSON.stringify({ manifests: [{ ...desc(), digest: 'sha256:short' }] }), /referrer 0/],
    [JSON.stringify({ manifests: [{ ...desc(), size: -1 }] }), /referrer 0/],
    [JSON.stringify({ manifests: [desc(), { ...desc(), artifactType: 7 }] }), /referrer 1 has an artifactType/],
    [JSON.stringify({ manifests: [{ ...desc(), annotations: { a: 1 } }] }), /annotations/],
  ] as const) {
    t.throws(() => parseReferrersIndex(bad), why, bad);
  }
});

t.test('referrersIndex filters by artifactType and always answers an OCI index', async (t) => {
  const all = [desc('x/sig'), desc('x/sbom'), desc()];
  const doc = (b: Buffer) => JSON.parse(b.toString()) as { schemaVersion: number; mediaType: string; manifests: unknown[] };
  t.equal(doc(referrersIndex(all, undefined)).manifests.length, 3);
  t.same(doc(referrersIndex(all, 'x/sig')).manifests, [desc('x/sig')]);
  t.same(doc(referrersIndex(all, 'none')), { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
});

t.test('paging: upstream next link → opaque page → our own link', async (t) => {
  t.equal(nextReferrersPage(undefined), undefined);
  t.equal(nextReferrersPage('</v2/r/referrers/x?cursor=2&artifactType=a>; rel="next"'), 'cursor=2', 'the filter is ours to add');
  t.equal(nextReferrersPage('<https://other.example/v2/r/referrers/x?n=1&last=q>; rel="next"'), 'n=1&last=q', 'host and path are dropped: only the query is relayed');
  t.equal(nextReferrersPage('</v2/r/referrers/x>; rel="next"'), undefined, 'a next page without a query would loop');
  t.equal(nextReferrersPage('</v2/r/referrers/x?c=1>; rel="prev"'), undefined);
  t.equal(nextReferrersPage(`</v2/r/referrers/x?c=${'z'.repeat(2000)}>; rel="next"`), undefined, 'too long to relay');
  t.equal(referrersPage(new URLSearchParams('ns=docker.io&artifactType=a&z=1&cursor=2')), 'cursor=2&z=1', 'ns and the filter are not upstream paging; sorted');
  t.throws(() => referrersPage(new URLSearchParams(`c=${'z'.repeat(2000)}`)), OciError);
  t.equal(referrersLink({ clientName: 'team/app', ns: 'ghcr.io' }, dg, 'cursor=2', 'a/b'), `</v2/team/app/referrers/${dg}?cursor=2&artifactType=a%2Fb&ns=ghcr.io>; rel="next"`);
  t.equal(referrersLink({ clientName: 'ghcr.io/team/app', ns: undefined }, dg, 'cursor=2', undefined), `</v2/ghcr.io/team/app/referrers/${dg}?cursor=2>; rel="next"`);
});
