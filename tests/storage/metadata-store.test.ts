import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../../src/oci/index.js';
import {
  createRedisKvStore,
  FileKvStore,
  KeyvMetadataStore,
  StorageError,
  type BlobRecord,
  type ManifestRecord,
  type MetadataKvStore,
  type TagRecord,
} from '../../src/storage/index.js';
import { redisTools, sharedRedisUrl, uniqueNamespace } from '../fixtures/redis.js';

// One contract, run against every MetadataStore backend: the embedded log and a real redis-server.

function digestOf(text: string): Digest {
  return parseDigest(`sha256:${createHash('sha256').update(text).digest('hex')}`);
}

interface Backend {
  /** A fresh, empty place to keep records; `open` may be called again on it (a restart). */
  place(t: Test): Promise<{ open(namespace?: string): Promise<{ meta: KeyvMetadataStore; kv: MetadataKvStore }> }>;
}

async function openWith(kv: MetadataKvStore, namespace: string | undefined): Promise<{ meta: KeyvMetadataStore; kv: MetadataKvStore }> {
  const meta = new KeyvMetadataStore(kv, namespace === undefined ? {} : { namespace });
  await meta.open();
  return { meta, kv };
}

const backends: Record<string, Backend & { skip?: string | false }> = {
  'embedded log': {
    async place(t) {
      const root = t.testdir();
      return { open: (namespace) => openWith(new FileKvStore({ root }), namespace) };
    },
  },
  redis: {
    skip: redisTools.skip,
    async place(t) {
      const url = await sharedRedisUrl(t);
      // The unique prefix keeps parallel test files (and reruns) on one Redis apart.
      const base = uniqueNamespace('contract');
      return { open: (namespace) => openWith(createRedisKvStore({ url, displayUrl: url }), namespace === undefined ? base : `${base}-${namespace}`) };
    },
  },
};

if (redisTools.skip && redisTools.required) t.fail(`metadata contract on redis: ${redisTools.skip}`);

const tag: TagRecord = {
  digest: digestOf('manifest'),
  mediaType: 'application/vnd.oci.image.index.v1+json',
  size: 1234,
  fetchedAt: 1_700_000_000_123,
};
const manifest: ManifestRecord = { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: 527 };
// Strings keyv's default serializer would rewrite (':'-prefixed, ':base64:'): they must round-trip as-is.
const blob: BlobRecord = { size: 42, upstreams: ['docker.io', ':colon', ':base64:aGk='] };

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

for (const [name, backend] of Object.entries(backends)) {
  t.test(name, { skip: backend.skip ?? false }, async (t) => {
    t.test('tags, manifests and blobs round-trip and survive a reopen', async (t) => {
      const place = await backend.place(t);
      const { meta } = await place.open();
      const d = digestOf('blob');
      t.equal(await meta.getTag('docker.io', 'library/alpine', 'latest'), undefined);
      t.equal(await meta.getManifest(tag.digest), undefined);
      t.equal(await meta.getBlob(d), undefined);

      await meta.setTag('docker.io', 'library/alpine', 'latest', tag);
      await meta.setManifest(tag.digest, manifest);
      await meta.setBlob(d, blob);
      t.same(await meta.getTag('docker.io', 'library/alpine', 'latest'), tag);
      t.same(await meta.getManifest(tag.digest), manifest);
      t.same(await meta.getBlob(d), blob);
      await meta.close();
      await meta.close();

      const { meta: again } = await place.open();
      t.teardown(() => again.close());
      t.strictSame(await again.getTag('docker.io', 'library/alpine', 'latest'), tag);
      t.strictSame(await again.getManifest(tag.digest), manifest);
      t.strictSame(await again.getBlob(d), blob);

      await again.deleteBlob(d);
      t.equal(await again.getBlob(d), undefined);
      await again.deleteBlob(d);
    });

    t.test('tag keys keep upstream, repository and tag apart', async (t) => {
      const { meta } = await (await backend.place(t)).open();
      t.teardown(() => meta.close());
      const other = { ...tag, size: 1 };
      await meta.setTag('a/b', 'c', 'x', tag);
      await meta.setTag('a', 'b/c', 'x', other);
      await meta.setTag('localhost:5000', 'repo', 'x', { ...tag, size: 2 });
      t.same(await meta.getTag('a/b', 'c', 'x'), tag);
      t.same(await meta.getTag('a', 'b/c', 'x'), other);
      t.equal((await meta.getTag('localhost:5000', 'repo', 'x'))?.size, 2);
      t.equal(await meta.getTag('localhost', '5000/repo', 'x'), undefined);
    });

    t.test('tags, manifests and blobs can be listed and deleted, each namespace on its own', async (t) => {
      const place = await backend.place(t);
      const { meta } = await place.open('one');
      const { meta: neighbour } = await place.open('two');
      t.teardown(() => Promise.all([meta.close(), neighbour.close()]));
      const d1 = digestOf('1');
      const d2 = digestOf('2');
      await meta.setTag('localhost:5000', 'team/app', 'v1', { ...tag, pulledAt: 1_700_000_001_000 });
      await meta.setTag('docker.io', 'library/alpine', 'latest', tag);
      await meta.setManifest(d1, manifest);
      await meta.setBlob(d1, blob);
      await meta.setBlob(d2, { size: 7, upstreams: ['docker.io'] });
      await neighbour.setTag('docker.io', 'library/busybox', 'latest', tag);
      await neighbour.setBlob(digestOf('3'), blob);

      const tags = (await collect(meta.tags())).sort((a, b) => a.tag.localeCompare(b.tag));
      t.strictSame(tags, [
        { upstream: 'docker.io', repository: 'library/alpine', tag: 'latest', record: tag },
        { upstream: 'localhost:5000', repository: 'team/app', tag: 'v1', record: { ...tag, pulledAt: 1_700_000_001_000 } },
      ]);
      t.strictSame(await collect(meta.manifests()), [{ digest: d1, record: manifest }]);
      t.same((await collect(meta.blobs())).map((b) => b.digest).sort(), [d1, d2].sort());
      await meta.link('docker.io', 'library/alpine', [d1, d2]);
      await neighbour.link('docker.io', 'library/busybox', [d1]);
      t.same(
        (await collect(meta.links())).sort((a, b) => a.digest.localeCompare(b.digest)),
        [{ upstream: 'docker.io', repository: 'library/alpine', digest: d1 }, { upstream: 'docker.io', repository: 'library/alpine', digest: d2 }].sort((a, b) => a.digest.localeCompare(b.digest)),
        'every link of this namespace, in one walk',
      );

      await meta.deleteTag('docker.io', 'library/alpine', 'latest');
      await meta.deleteManifest(d1);
      t.equal(await meta.getTag('docker.io', 'library/alpine', 'latest'), undefined);
      t.same((await collect(meta.tags())).map((e) => e.repository), ['team/app']);
      t.same(await collect(meta.manifests()), []);
      t.same((await collect(neighbour.tags())).map((e) => e.repository), ['library/busybox'], 'the other namespace is untouched');
    });

    t.test('listTags lists one repository of one upstream; deleteTag forgets a tag for good', async (t) => {
      const place = await backend.place(t);
      const { meta } = await place.open();
      await meta.setTag('r.test', 'team/app', 'b', tag);
      await meta.setTag('r.test', 'team/app', 'a', tag);
      await meta.setTag('r.test', 'team/app/sub', 'x', tag);
      await meta.setTag('r.test', 'team/ap', 'y', tag);
      await meta.setTag('other.test', 'team/app', 'z', tag);
      t.same(await meta.listTags('r.test', 'team/app'), ['a', 'b'], 'no neighbouring repository or upstream leaks in');
      await meta.deleteTag('r.test', 'team/app', 'a');
      t.equal(await meta.getTag('r.test', 'team/app', 'a'), undefined);
      await meta.close();
      const { meta: again } = await place.open();
      t.teardown(() => again.close());
      t.same(await again.listTags('r.test', 'team/app'), ['b'], 'the delete survives a reopen');
    });

    t.test('links record which repositories hold a digest, per upstream, and survive a reopen', async (t) => {
      const place = await backend.place(t);
      const { meta } = await place.open();
      const [d1, d2, d3] = [digestOf('l1'), digestOf('l2'), digestOf('l3')];
      await meta.link('localhost:5000', 'team/app', [d1, d2]);
      await meta.link('localhost:5000', 'team/app', [d1]);
      await meta.link('other.test', 'team/app/sub', [d1]);
      t.ok(await meta.hasLink('localhost:5000', 'team/app', d1));
      t.ok(await meta.hasLink('localhost:5000', 'team/app', d2));
      t.notOk(await meta.hasLink('localhost:5000', 'team/app', d3), 'a digest never linked');
      t.notOk(await meta.hasLink('other.test', 'team/app', d1), 'another upstream');
      t.notOk(await meta.hasLink('localhost:5000', 'team/app/sub', d1), 'another repository');
      const d4 = digestOf('l4');
      await meta.link('a/b', 'c', [d4]);
      t.notOk(await meta.hasLink('a', 'b/c', d4), 'the upstream name cannot run into the repository');
      t.strictSame(await meta.linkedRepositories(d4), [{ upstream: 'a/b', repository: 'c' }]);
      t.strictSame(await meta.linkedRepositories(d1), [
        { upstream: 'localhost:5000', repository: 'team/app' },
        { upstream: 'other.test', repository: 'team/app/sub' },
      ]);
      t.strictSame(await meta.linkedRepositories(d3), []);
      await meta.close();
      const { meta: again } = await place.open();
      t.teardown(() => again.close());
      t.ok(await again.hasLink('localhost:5000', 'team/app', d2));
      t.strictSame(await again.linkedRepositories(d2), [{ upstream: 'localhost:5000', repository: 'team/app' }]);
    });

    t.test('repositories: every repository with a tag or a link, once each, sorted, per namespace', async (t) => {
      const place = await backend.place(t);
      const { meta } = await place.open('held');
      const { meta: neighbour } = await place.open('elsewhere');
      t.teardown(() => Promise.all([meta.close(), neighbour.close()]));
      t.strictSame(await meta.repositories(), [], 'nothing held yet');
      const [d1, d2] = [digestOf('r1'), digestOf('r2')];
      await meta.setTag('docker.io', 'library/alpine', '3', tag);
      await meta.setTag('docker.io', 'library/alpine', 'latest', tag);
      await meta.link('docker.io', 'library/alpine', [d1, d2]);
      await meta.link('ghcr.io', 'org/tool', [d1]);
      await meta.link('localhost:5000', 'team/app', [d2]);
      await meta.setTag('localhost:5000', 'team/app', 'v1', tag);
      await meta.setTag('a/b', 'c', 'x', tag);
      await meta.setManifest(d1, manifest);
      await meta.setBlob(d1, blob);
      await neighbour.setTag('docker.io', 'library/busybox', 'latest', tag);
      t.strictSame(await meta.repositories(), [
        { upstream: 'a/b', repository: 'c' },
        { upstream: 'docker.io', repository: 'library/alpine' },
        { upstream: 'ghcr.io', repository: 'org/tool' },
        { upstream: 'localhost:5000', repository: 'team/app' },
      ]);
      await meta.deleteTag('a/b', 'c', 'x');
      t.strictSame((await meta.repositories()).map((r) => r.repository), ['library/alpine', 'org/tool', 'team/app'], 'a repository whose last tag went, with no link, is gone');
    });

    t.test('referrers pages round-trip per upstream, repository, subject and page, and are neither tags nor repositories', async (t) => {
      const place = await backend.place(t);
      const { meta, kv } = await place.open('refs');
      const subject = digestOf('subject');
      const page = { body: '{"schemaVersion":2,"manifests":[]}', next: 'page=2', fetchedAt: 1_700_000_000_000 };
      const none = { body: null, fetchedAt: 1_700_000_000_001 };
      t.equal(await meta.getReferrers('docker.io', 'library/alpine', subject, ''), undefined);
      await meta.setReferrers('docker.io', 'library/alpine', subject, '', page);
      await meta.setReferrers('docker.io', 'library/alpine', subject, 'page=2', none);
      await meta.setReferrers('ghcr.io', 'library/alpine', subject, '', none);
      t.strictSame(await meta.getReferrers('docker.io', 'library/alpine', subject, ''), page);
      t.strictSame(await meta.getReferrers('docker.io', 'library/alpine', subject, 'page=2'), none, 'a page of its own; null: no referrers API');
      t.strictSame(await meta.getReferrers('ghcr.io', 'library/alpine', subject, ''), none, 'per upstream');
      t.equal(await meta.getReferrers('docker.io', 'library/alpine', digestOf('other'), ''), undefined, 'per subject');
      t.strictSame(await meta.repositories(), [], 'referrers alone hold no repository');
      t.strictSame(await meta.listTags('docker.io', 'library/alpine'), [], 'nor a tag');
      await kv.set(`${meta.namespace}:referrers:docker.io/library/alpine@${subject}?`, JSON.stringify({ value: { body: 7, fetchedAt: 1 } }));
      t.equal(await meta.getReferrers('docker.io', 'library/alpine', subject, ''), undefined, 'a body that is not a string or null reads as absent');
      await meta.close();
      const { meta: again } = await place.open('refs');
      t.teardown(() => again.close());
      t.strictSame(await again.getReferrers('docker.io', 'library/alpine', subject, 'page=2'), none, 'survives a reopen');
    });

    t.test('a blob record written before links existed stays readable beside them', async (t) => {
      const { meta, kv } = await (await backend.place(t)).open('old');
      t.teardown(() => meta.close());
      const d = digestOf('old');
      // The exact line the previous release wrote: the record's shape is unchanged.
      await kv.set(`${meta.namespace}:blob:${d}`, JSON.stringify({ value: { size: 9, upstreams: ['docker.io'] } }));
      await meta.link('docker.io', 'library/alpine', [d]);
      t.strictSame(await meta.getBlob(d), { size: 9, upstreams: ['docker.io'] });
      t.same((await collect(meta.blobs())).map((b) => b.digest), [d], 'links are not blob records');
    });

    t.test('records of the wrong shape read as absent and are skipped in listings', async (t) => {
      const { meta, kv } = await (await backend.place(t)).open('ns');
      t.teardown(() => meta.close());
      const ns = meta.namespace;
      const d = digestOf('x');
      const raw = (value: unknown) => JSON.stringify({ value });
      await kv.set(`${ns}:blob:${d}`, raw({ size: '42', upstreams: [] }));
      t.equal(await meta.getBlob(d), undefined, 'size not a number');
      await kv.set(`${ns}:blob:${d}`, raw({ size: 42, upstreams: [1] }));
      t.equal(await meta.getBlob(d), undefined, 'upstreams not strings');
      t.same(await collect(meta.blobs()), [], 'skipped in the listing');
      await kv.set(`${ns}:manifest:${d}`, raw(['mediaType']));
      t.equal(await meta.getManifest(d), undefined, 'an array');
      await kv.set(`${ns}:manifest:${d}`, raw({ mediaType: 'x' }));
      t.equal(await meta.getManifest(d), undefined, 'size missing');
      await kv.set(`${ns}:tag:up/repo:t`, raw({ ...tag, digest: 'sha256:nothex' }));
      t.equal(await meta.getTag('up', 'repo', 't'), undefined, 'an invalid digest');
      await kv.set(`${ns}:tag:up/repo:t`, raw({ ...tag, fetchedAt: 'yesterday' }));
      t.equal(await meta.getTag('up', 'repo', 't'), undefined, 'fetchedAt not a number');
      t.same(await collect(meta.tags()), []);
      await kv.set(`${ns}:tag:up/repo:t`, raw(tag));
      t.same(await meta.getTag('up', 'repo', 't'), tag, 'the namespace prefixes every key');
    });

    t.test('a closed store fails with StorageError', async (t) => {
      const { meta } = await (await backend.place(t)).open();
      await meta.close();
      const d = digestOf('y');
      await t.rejects(meta.getBlob(d), StorageError);
      await t.rejects(meta.setBlob(d, blob), StorageError);
      await t.rejects(meta.deleteBlob(d), StorageError);
      await t.rejects(meta.setTag('u', 'r', 't', tag), StorageError);
      await t.rejects(collect(meta.tags()), StorageError);
      await t.rejects(meta.link('u', 'r', [d]), StorageError);
      await t.rejects(meta.hasLink('u', 'r', d), StorageError);
      await t.rejects(meta.linkedRepositories(d), StorageError);
      await t.rejects(meta.repositories(), StorageError);
    });
  });
}
