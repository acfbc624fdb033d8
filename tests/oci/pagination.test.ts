import t from 'tap';
import { nextPageFromLink, parseRoute, tagsListLink, type RouteContext } from '../../src/oci/index.js';

const cases: [string, string | undefined, { n: number | undefined; last: string | undefined } | undefined][] = [
  ['absent', undefined, undefined],
  ['empty', '', undefined],
  ['relative', '</v2/library/alpine/tags/list?last=3.19&n=100>; rel="next"', { n: 100, last: '3.19' }],
  ['absolute', '<https://registry-1.docker.io/v2/library/alpine/tags/list?n=50&last=edge>; rel="next"', { n: 50, last: 'edge' }],
  ['only last', '</v2/a/tags/list?last=v1>; rel="next"', { n: undefined, last: 'v1' }],
  ['only n', '</v2/a/tags/list?n=10>; rel=next', { n: 10, last: undefined }],
  ['unquoted rel, case', '</v2/a/tags/list?last=b>;REL=Next', { n: undefined, last: 'b' }],
  ['spaces around params', '</v2/a/tags/list?last=b> ;  rel = "next"', { n: undefined, last: 'b' }],
  ['several rels', '</v2/a/tags/list?last=b>; rel="prev next"', { n: undefined, last: 'b' }],
  ['next after prev', '</v2/a/tags/list?last=a>; rel="prev", </v2/a/tags/list?last=z&n=2>; rel="next"', { n: 2, last: 'z' }],
  ['comma inside URL and quoted param', '</v2/a/tags/list?last=x%2Cy>; title="a, b"; rel="next"', { n: undefined, last: 'x,y' }],
  ['escaped quote in param', '</v2/a/tags/list?last=q>; title="say \\"hi\\", ok"; rel="next"', { n: undefined, last: 'q' }],
  ['percent-encoded last', '</v2/a/tags/list?last=v1%2B&n=5>; rel="next"', { n: 5, last: 'v1+' }],
  ['other params ignored', '</v2/a/tags/list?last=b&ns=docker.io&x=1>; rel="next"', { n: undefined, last: 'b' }],
  ['n too large dropped', '</v2/a/tags/list?last=b&n=20000>; rel="next"', { n: undefined, last: 'b' }],
  ['n garbage dropped', '</v2/a/tags/list?last=b&n=-1>; rel="next"', { n: undefined, last: 'b' }],
  ['no rel', '</v2/a/tags/list?last=b>', undefined],
  ['rel prev only', '</v2/a/tags/list?last=b>; rel="prev"', undefined],
  ['next without n or last', '</v2/a/tags/list>; rel="next"', undefined],
  ['next with empty last only', '</v2/a/tags/list?last=>; rel="next"', undefined],
  ['last too long', `</v2/a/tags/list?last=${'a'.repeat(257)}>; rel="next"`, undefined],
  ['unparsable URL', '<http://[bad>; rel="next"', undefined],
  ['no closing bracket', '</v2/a/tags/list?last=b; rel="next"', undefined],
  ['no brackets', 'rel="next"', undefined],
];

t.test('nextPageFromLink', async (t) => {
  for (const [label, link, want] of cases) t.same(nextPageFromLink(link), want, label);
});

t.test('tagsListLink', async (t) => {
  t.equal(tagsListLink({ clientName: 'library/alpine', ns: undefined }, { n: 100, last: '3.19' }), '</v2/library/alpine/tags/list?n=100&last=3.19>; rel="next"');
  t.equal(
    tagsListLink({ clientName: 'alpine', ns: 'docker.io' }, { n: undefined, last: 'v1' }),
    '</v2/alpine/tags/list?last=v1&ns=docker.io>; rel="next"',
  );
  t.equal(tagsListLink({ clientName: 'ghcr.io/o/r', ns: undefined }, { n: 5, last: undefined }), '</v2/ghcr.io/o/r/tags/list?n=5>; rel="next"');
  t.equal(tagsListLink({ clientName: '127.0.0.1:5001/x', ns: undefined }, { n: undefined, last: 'a b&c=d>' }), '</v2/127.0.0.1:5001/x/tags/list?last=a+b%26c%3Dd%3E>; rel="next"');
  t.equal(tagsListLink({ clientName: 'x', ns: undefined }, { n: undefined, last: undefined }), '</v2/x/tags/list>; rel="next"');
  t.equal(tagsListLink({ clientName: 'we>ird name', ns: undefined }, { n: 1, last: undefined }), '</v2/we%3Eird%20name/tags/list?n=1>; rel="next"');
});

t.test('round trip: upstream link → our link → our route', async (t) => {
  const ctx: RouteContext = {
    upstreams: new Map([['docker.io', { officialLibrary: true }], ['ghcr.io', { officialLibrary: false }]]),
    aliases: new Map(),
    defaultUpstream: 'docker.io',
  };
  const upstreamLink = '<https://ghcr.io/v2/o/r/tags/list?last=v1.0%2Bx&n=3>; rel="next"';
  const next = nextPageFromLink(upstreamLink);
  t.same(next, { n: 3, last: 'v1.0+x' });
  const ours = tagsListLink({ clientName: 'ghcr.io/o/r', ns: undefined }, next!);
  const url = /^<([^>]*)>; rel="next"$/.exec(ours)?.[1];
  t.ok(url);
  const route = parseRoute('GET', url!, ctx);
  t.match(route, { kind: 'tags', upstream: 'ghcr.io', name: 'o/r', n: 3, last: 'v1.0+x' });
});
