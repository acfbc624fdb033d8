import t from 'tap';
import { pino } from 'pino';
import { parseDigest, parseRepositoryName } from '../../src/oci/index.js';
import { Mirror, noopObserver } from '../../src/mirror/index.js';
import { FileKvStore, FsBlobStore, KeyvMetadataStore } from '../../src/storage/index.js';
import { OfflineUpstream } from '../../src/upstream/index.js';

const record = { digest: parseDigest(`sha256:${'d'.repeat(64)}`), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, fetchedAt: 1 };

t.test('what the mirror holds: valid repository names only, and an offline upstream\'s tags from the records', async (t) => {
  const root = t.testdir();
  const metadata = new KeyvMetadataStore(new FileKvStore({ root }));
  await metadata.open();
  t.teardown(() => metadata.close());
  const mirror = new Mirror({
    upstreams: new Map([['air.local', new OfflineUpstream('air.local')]]),
    store: new FsBlobStore({ root }),
    metadata,
    observer: noopObserver,
    logger: pino({ level: 'silent' }),
    manifestTTLms: 60_000,
  });
  await metadata.setTag('air.local', 'team/app', 'b', record);
  await metadata.setTag('air.local', 'team/app', 'a', record);
  // Written by hand or by another version: no client could name it, so it is never listed.
  await metadata.setTag('air.local', 'Team/App', 'x', record);
  await metadata.link('air.local', 'org/tool', [record.digest]);
  t.strictSame(await mirror.repositories(), [
    { upstream: 'air.local', name: 'org/tool' },
    { upstream: 'air.local', name: 'team/app' },
  ]);

  const app = { upstream: 'air.local', name: parseRepositoryName('team/app') };
  const page = await mirror.tags(app, { n: 1, last: undefined });
  t.same(JSON.parse(page.body.toString()), { name: 'team/app', tags: ['a'] });
  t.same(page.next, { n: 1, last: 'a' });
  await t.rejects(mirror.tags({ upstream: 'air.local', name: parseRepositoryName('org/tool') }, { n: undefined, last: undefined }), { code: 'NAME_UNKNOWN' }, 'linked, but no tag held');
});
