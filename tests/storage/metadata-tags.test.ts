import t from 'tap';
import { createHash } from 'node:crypto';
import { parseDigest } from '../../src/oci/index.js';
import { FileKvStore, KeyvMetadataStore } from '../../src/storage/index.js';

const record = { digest: parseDigest(`sha256:${createHash('sha256').update('m').digest('hex')}`), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, fetchedAt: 1 };

t.test('listTags lists one repository of one upstream; deleteTag forgets a tag for good', async (t) => {
  const root = t.testdir();
  const open = async () => {
    const meta = new KeyvMetadataStore(new FileKvStore({ root }), { namespace: 'ns' });
    await meta.open();
    return meta;
  };
  const meta = await open();
  await meta.setTag('r.test', 'team/app', 'b', record);
  await meta.setTag('r.test', 'team/app', 'a', record);
  await meta.setTag('r.test', 'team/app/sub', 'x', record);
  await meta.setTag('r.test', 'team/ap', 'y', record);
  await meta.setTag('other.test', 'team/app', 'z', record);
  t.same(await meta.listTags('r.test', 'team/app'), ['a', 'b'], 'no neighbouring repository or upstream leaks in');
  await meta.deleteTag('r.test', 'team/app', 'a');
  t.equal(await meta.getTag('r.test', 'team/app', 'a'), undefined);
  await meta.close();
  const again = await open();
  t.same(await again.listTags('r.test', 'team/app'), ['b'], 'the delete survives a reopen');
  await again.close();
});
