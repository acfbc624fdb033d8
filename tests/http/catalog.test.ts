import t, { type Test } from 'tap';
import { allowAll, type AccessController } from '../../src/access/index.js';
import { quickImage } from '../fixtures/images.js';
import { errorCode, request } from '../fixtures/http.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

/** Every name of a catalog view, following the Link chain from `first`. */
async function walk(t: Test, mirror: TestMirror, first: string, headers: Record<string, string> = {}): Promise<{ names: string[]; links: string[] }> {
  const names: string[] = [];
  const links: string[] = [];
  for (let target: string | undefined = first; target !== undefined; ) {
    const res = await request(`${mirror.url}${target}`, { headers });
    t.equal(res.status, 200, target);
    names.push(...(JSON.parse(res.body.toString()) as { repositories: string[] }).repositories);
    const link = res.headers.link as string | undefined;
    if (link !== undefined) links.push(link);
    target = link === undefined ? undefined : /^<([^>]+)>; rel="next"$/.exec(link)?.[1];
  }
  return { names, links };
}

t.test('/v2/_catalog lists what the mirror holds, per upstream view, filtered by the read policy', async (t) => {
  const reg = await startTestRegistry(t);
  const alpine = quickImage('alpine');
  const app = quickImage('app');
  const tool = quickImage('tool');
  const odd = quickImage('odd');
  reg.pushImage('library/alpine', '3', alpine);
  reg.pushImage('team/app', '1', app);
  reg.pushImage('team/never-pulled', '1', quickImage('never'));
  reg.pushImage('org/tool', undefined, tool);
  reg.pushImage('ghcr.io/odd', '1', odd);

  const asked: string[] = [];
  const access: AccessController = {
    ...allowAll,
    authorize: async (req) => ({ principal: String(req.headers['x-user'] ?? 'anonymous') }),
    canRead: (grant, upstream, repository) => {
      asked.push(`${grant.principal} ${upstream}/${repository}`);
      return grant.principal !== 'bob' || repository !== 'team/app';
    },
  };
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: reg.url, library: true, aliases: ['index.docker.io'] }, 'ghcr.io': { url: reg.url } },
    access,
  });
  t.same((await walk(t, mirror, '/v2/_catalog')).names, [], 'nothing held yet: an empty list, not upstream\'s');

  const pulls = [
    '/v2/alpine/manifests/3',
    '/v2/team/app/manifests/1',
    // By digest only: the repository has links and no tag.
    `/v2/ghcr.io/org/tool/manifests/${tool.manifestDigest}`,
    // A default-upstream name that bare would route to ghcr.io: reachable with ?ns= only.
    '/v2/ghcr.io/odd/manifests/1?ns=docker.io',
  ];
  for (const target of pulls) t.equal((await request(`${mirror.url}${target}`, { headers: { accept: ACCEPT } })).status, 200, target);
  const seen = reg.requests.length;

  const everything = ['docker.io/ghcr.io/odd', 'ghcr.io/org/tool', 'library/alpine', 'team/app'];
  t.same((await walk(t, mirror, '/v2/_catalog')).names, everything, 'the default upstream bare, the others behind their prefix');
  t.same((await walk(t, mirror, '/v2/_catalog?ns=docker.io')).names, ['ghcr.io/odd', 'library/alpine', 'team/app'], 'one upstream with ?ns=');
  t.same((await walk(t, mirror, '/v2/ghcr.io/_catalog')).names, ['ghcr.io/org/tool'], 'one upstream by path prefix');

  // Every listed name pulls, addressed the way its view addresses it.
  const digestOf: Record<string, string> = {
    'docker.io/ghcr.io/odd': odd.manifestDigest,
    'ghcr.io/org/tool': tool.manifestDigest,
    'library/alpine': alpine.manifestDigest,
    'team/app': app.manifestDigest,
  };
  for (const name of everything) {
    const res = await request(`${mirror.url}/v2/${name}/manifests/${digestOf[name]}`, { method: 'HEAD', headers: { accept: ACCEPT } });
    t.equal(res.status, 200, `${name} pulls as listed`);
  }
  const viaNs = await request(`${mirror.url}/v2/ghcr.io/odd/manifests/${odd.manifestDigest}?ns=docker.io`, { method: 'HEAD', headers: { accept: ACCEPT } });
  t.equal(viaNs.status, 200, 'and as listed under ?ns=');

  const paged = await walk(t, mirror, '/v2/_catalog?n=1');
  t.same(paged.names, everything, 'n=1 pages add up to the whole list');
  t.same(paged.links.slice(0, 2), ['</v2/_catalog?n=1&last=docker.io%2Fghcr.io%2Fodd>; rel="next"', '</v2/_catalog?n=1&last=ghcr.io%2Forg%2Ftool>; rel="next"']);
  t.equal(paged.links.length, 3, 'no Link on the last page');
  const aliased = await walk(t, mirror, '/v2/_catalog?ns=index.docker.io&n=2');
  t.same(aliased.names, ['ghcr.io/odd', 'library/alpine', 'team/app']);
  t.same(aliased.links, ['</v2/_catalog?n=2&last=library%2Falpine&ns=index.docker.io>; rel="next"'], 'the ns the client sent stays in the Link');
  t.same((await walk(t, mirror, '/v2/ghcr.io/_catalog?n=1')).links, [], 'one name fills one page: no Link');

  asked.length = 0;
  t.same((await walk(t, mirror, '/v2/_catalog', { 'x-user': 'bob' })).names, ['docker.io/ghcr.io/odd', 'ghcr.io/org/tool', 'library/alpine'], 'bob may not read team/app: it is not listed');
  t.ok(asked.includes('bob docker.io/team/app'), 'asked with the grant this request got, about the resolved name');
  t.same((await walk(t, mirror, '/v2/_catalog', { 'x-user': 'alice' })).names, everything);

  const unknown = await request(`${mirror.url}/v2/_catalog?ns=nowhere.example`);
  t.equal(unknown.status, 404);
  t.equal(errorCode(unknown), 'NAME_UNKNOWN');
  const badN = await request(`${mirror.url}/v2/_catalog?n=x`);
  t.equal(badN.status, 400);
  t.equal(errorCode(badN), 'PAGINATION_NUMBER_INVALID');
  t.equal(reg.requests.length, seen, 'the catalog never asks upstream');
});
