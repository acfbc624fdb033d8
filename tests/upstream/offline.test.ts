import t from 'tap';
import { FIRST_PAGE, parseDigest, parseReference, parseRepositoryName } from '../../src/oci/index.js';
import { OfflineUpstream, UpstreamError } from '../../src/upstream/index.js';
import { expectFailure, testUpstream } from '../fixtures/upstream.js';
import { startSilentListener } from '../fixtures/silent-listener.js';

const repo = parseRepositoryName('team/app');
const digest = parseDigest(`sha256:${'c'.repeat(64)}`);

t.test('an offline upstream answers not-found to everything, with the OCI code, and dials nothing', async (t) => {
  const firewall = await startSilentListener(t);
  const thrown: unknown[] = [];
  const { up, seen } = testUpstream(t, firewall.url, { name: 'air.local', offline: true });
  t.type(up, OfflineUpstream, 'createUpstream picks the offline client for offline: true');
  t.equal(up.offline, true);
  const calls: [Promise<unknown>, string][] = [
    [up.getManifest(repo, parseReference('1.0'), []), 'MANIFEST_UNKNOWN'],
    [up.headManifest(repo, parseReference(digest), []), 'MANIFEST_UNKNOWN'],
    [up.getBlob(repo, digest), 'BLOB_UNKNOWN'],
    [up.headBlob(repo, digest), 'BLOB_UNKNOWN'],
    [up.listTags(repo, FIRST_PAGE), 'NAME_UNKNOWN'],
    [up.listCatalog(FIRST_PAGE), 'NAME_UNKNOWN'],
  ];
  for (const [call, code] of calls) {
    const err = await expectFailure(t, call, 'not-found', thrown);
    t.equal(err?.details.ociCode, code);
    t.equal(err?.upstream, 'air.local');
    t.match(err?.message, /air\.local is offline/);
  }
  await up.close();
  t.equal(firewall.accepted(), 0, 'no connection');
  t.same(seen.requests, [], 'no upstream request reported to metrics');
  t.ok(thrown.every((e) => e instanceof UpstreamError));
});

t.test('an upstream without a url is offline whatever the flag says', async (t) => {
  const { up } = testUpstream(t, 'http://127.0.0.1:9', { url: undefined });
  t.equal(up.offline, true);
  const online = testUpstream(t, 'http://127.0.0.1:9').up;
  t.equal(online.offline, false, 'the HTTP client otherwise');
});
