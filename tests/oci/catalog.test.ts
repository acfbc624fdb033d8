import t from 'tap';
import { catalogLink, catalogName, pageOf, type CatalogView, type RouteContext } from '../../src/oci/index.js';

const ctx: RouteContext = {
  upstreams: new Map([
    ['docker.io', { officialLibrary: true }],
    ['ghcr.io', { officialLibrary: false }],
  ]),
  aliases: new Map([['index.docker.io', 'docker.io']]),
  defaultUpstream: 'docker.io',
};
const all: CatalogView = { kind: 'all' };

t.test('catalogName: each view names a repository the way its client addresses it', async (t) => {
  t.equal(catalogName(ctx, all, 'docker.io', 'library/alpine'), 'library/alpine', 'the default upstream, bare');
  t.equal(catalogName(ctx, all, 'ghcr.io', 'org/tool'), 'ghcr.io/org/tool', 'another upstream, behind its prefix');
  t.equal(catalogName(ctx, all, 'docker.io', 'ghcr.io/x'), 'docker.io/ghcr.io/x', 'bare, it would route to ghcr.io');
  t.equal(catalogName(ctx, all, 'docker.io', 'index.docker.io/x'), 'docker.io/index.docker.io/x', 'an alias reads as a prefix too');
  t.equal(catalogName(ctx, all, 'docker.io', 'docker.io'), 'docker.io', 'a one-segment name is never a prefix');
  const ns: CatalogView = { kind: 'ns', upstream: 'ghcr.io', ns: 'ghcr.io' };
  t.equal(catalogName(ctx, ns, 'ghcr.io', 'org/tool'), 'org/tool');
  t.equal(catalogName(ctx, ns, 'docker.io', 'library/alpine'), undefined, 'another upstream is not in this view');
  const prefix: CatalogView = { kind: 'prefix', upstream: 'docker.io', prefix: 'index.docker.io' };
  t.equal(catalogName(ctx, prefix, 'docker.io', 'library/alpine'), 'index.docker.io/library/alpine', 'the prefix as the client wrote it');
  t.equal(catalogName(ctx, prefix, 'ghcr.io', 'org/tool'), undefined);
});

t.test('pageOf: names after last, at most n, and where the next page starts', async (t) => {
  const names = ['a', 'b', 'c', 'd'];
  t.strictSame(pageOf(names, { n: undefined, last: undefined }), { items: names, next: undefined }, 'no n: everything');
  t.strictSame(pageOf(names, { n: 2, last: undefined }), { items: ['a', 'b'], next: { n: 2, last: 'b' } });
  t.strictSame(pageOf(names, { n: 2, last: 'b' }), { items: ['c', 'd'], next: undefined }, 'an exact last page has no next');
  t.strictSame(pageOf(names, { n: 2, last: 'bb' }), { items: ['c', 'd'], next: undefined }, 'last need not be a held name');
  t.strictSame(pageOf(names, { n: undefined, last: 'd' }), { items: [], next: undefined });
  t.strictSame(pageOf(names, { n: 0, last: undefined }), { items: [], next: undefined }, 'n=0: an empty page and no link');
  t.strictSame(pageOf([], { n: 5, last: undefined }), { items: [], next: undefined });
});

t.test('catalogLink keeps the path prefix or ns of the request', async (t) => {
  t.equal(catalogLink(all, { n: 2, last: 'ghcr.io/org/tool' }), '</v2/_catalog?n=2&last=ghcr.io%2Forg%2Ftool>; rel="next"');
  t.equal(catalogLink({ kind: 'ns', upstream: 'docker.io', ns: 'index.docker.io' }, { n: 1, last: 'library/a' }), '</v2/_catalog?n=1&last=library%2Fa&ns=index.docker.io>; rel="next"');
  t.equal(catalogLink({ kind: 'prefix', upstream: 'ghcr.io', prefix: 'ghcr.io' }, { n: 1, last: 'ghcr.io/a' }), '</v2/ghcr.io/_catalog?n=1&last=ghcr.io%2Fa>; rel="next"');
});
