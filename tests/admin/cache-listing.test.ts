import t, { type Test } from 'tap';
import { rmSync } from 'node:fs';
import { buildIndex, quickImage, sha256, type Image } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { ADMIN_COMMANDS, callAdmin, UsageError, type AdminCommandSpec, type LsResult, type PruneResult } from '../../src/admin/index.js';
import { completeness } from '../../src/admin/commands/ls.js';
import { formatBytes, formatTime } from '../../src/cli/format.js';
import { storageLayout, tagLastUsed } from '../../src/storage/index.js';

// `cache ls` and `cache prune` inside one process (a running serve's admin socket): what the COMPLETE,
// PINNED, SYNCED and LAST PULLED columns are made of, and the notes prune adds. tests/cli/cache-ls.test.ts
// runs the same as an operator would, as child processes.

const ACCEPT = { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

function spec(name: string): AdminCommandSpec {
  const found = ADMIN_COMMANDS.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no admin command ${name}`);
  return found;
}

async function pull(t: Test, url: string, repo: string, ref: string, blobs: ReadonlyArray<{ digest: string }>): Promise<void> {
  t.equal((await request(`${url}/v2/${repo}/manifests/${ref}`, { headers: ACCEPT })).status, 200, `${repo}:${ref}`);
  for (const b of blobs) t.equal(sha256((await request(`${url}/v2/${repo}/blobs/${b.digest}`)).body), b.digest);
}

t.test('ls: completeness, pins, a sync apart from a client pull, patterns; prune says what comes back', async (t) => {
  const reg = await startTestRegistry(t);
  const [app, big, tool] = ['app', 'big', 'tool'].map((n) => quickImage(`listing-${n}`)) as [Image, Image, Image];
  const amd = quickImage('listing-amd', { architecture: 'amd64' });
  const arm = quickImage('listing-arm', { architecture: 'arm64' });
  reg.pushImage('team/app', 'v1', app);
  reg.pushImage('team/big', 'v1', big);
  reg.pushImage('other/tool', 'latest', tool);
  reg.pushIndex('other/multi', 'v1', buildIndex([amd, arm]));
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: reg.url } },
    manifestTTL: '0',
    pin: ['docker.io/team/**'],
    sync: [{ repository: 'other/tool', tags: ['latest'] }],
  });
  const synced = await mirror.app.sync.run();
  t.equal(synced.entries[0]?.images.length, 1, 'the sync run mirrored other/tool:latest');
  await pull(t, mirror.url, 'team/app', 'v1', [app.config, ...app.layers]);
  await pull(t, mirror.url, 'team/big', 'v1', [big.config, big.layers[0]!]);
  await pull(t, mirror.url, 'other/multi', 'v1', []);
  await pull(t, mirror.url, 'other/multi', amd.manifestDigest, [amd.config, ...amd.layers]);
  await mirror.app.settled();
  const ls = async (body: Record<string, unknown> = {}) => {
    const reply = await callAdmin(mirror.storage, 'POST', '/v1/command', { command: 'ls', ...body });
    t.equal(reply.status, 200);
    return reply.body as LsResult;
  };

  const all = await ls();
  const row = (repo: string) => all.tags.find((e) => e.repository === repo);
  t.same(all.pinSources, ['storage.pin', 'sync entries', 'pins.json']);
  t.match(row('team/app'), { complete: true, layers: { cached: 2, total: 2 }, missingConfigs: 0, platforms: [], pinned: true, lastPulled: ISO, lastSynced: null });
  t.match(row('team/big'), { complete: false, layers: { cached: 1, total: 2 }, pinned: true });
  t.match(row('other/tool'), { complete: true, pinned: true, lastPulled: null, lastSynced: ISO }, 'synced, never pulled by a client; sync entries pin');
  t.match(row('other/multi'), { complete: true, layers: { cached: 2, total: 2 }, platforms: ['linux/amd64'], pinned: false });
  const human = spec('ls').format(all);
  t.match(human, /^REPOSITORY +TAG +DIGEST +SIZE +COMPLETE +PINNED +SYNCED +LAST PULLED$/m);
  t.match(human, /^docker\.io\/team\/big +v1 +sha256:[0-9a-f]{12} +[\d.]+ KiB +1\/2 layers +yes +no +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
  t.match(human, /^docker\.io\/other\/tool +latest +sha256:[0-9a-f]{12} +[\d.]+ KiB +2\/2 layers +yes +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +never$/m);
  t.match(human, /^docker\.io\/other\/multi +v1 .* 2\/2 layers, 1 platform +no +no /m);
  t.equal(spec('ls').note?.(all), undefined, 'a server knows every pin source');

  t.same((await ls({ incomplete: true })).tags.map((e) => e.repository), ['team/big'], '--incomplete');
  t.same((await ls({ pattern: 'team/*' })).tags.map((e) => e.repository), ['team/app', 'team/big'], 'a repository glob');
  t.same((await ls({ pattern: 'docker.io/other/**' })).tags.map((e) => e.repository), ['other/multi', 'other/tool'], 'with its upstream');
  t.match(spec('ls').format(await ls({ pattern: 'nothing/here' })), /^no cached tags; \d+ blob files/);

  // A client pulls what sync brought: the pull is recorded, the sync time stays.
  const syncedAt = row('other/tool')?.lastSynced;
  await pull(t, mirror.url, 'other/tool', 'latest', []);
  t.match((await ls({ pattern: 'other/tool' })).tags[0], { lastPulled: ISO, lastSynced: syncedAt });

  const dry = await callAdmin(mirror.storage, 'POST', '/v1/command', spec('prune').fromCli({ repo: '**', dryRun: true }));
  const pruned = spec('prune').format(dry.body as PruneResult);
  t.match(pruned, new RegExp(`^would prune docker\\.io/other/tool:latest \\(sha256:[0-9a-f]{12}\\); pinned: its content stays while the pin does; synced ${syncedAt}: the next sync run brings it back$`, 'm'));
  t.match(pruned, /^would prune docker\.io\/team\/app:v1 \(sha256:[0-9a-f]{12}\); pinned: its content stays while the pin does$/m);
  t.match(pruned, /^would prune docker\.io\/other\/multi:v1 \(sha256:[0-9a-f]{12}\)$/m);
});

t.test('ls arguments: a pattern outside the grammar is a usage error; the COMPLETE cell', async (t) => {
  t.same(spec('ls').fromCli({ pattern: 'team/*', incomplete: true }), { command: 'ls', incomplete: true, pattern: 'team/*' });
  t.same(spec('ls').fromCli({}), { command: 'ls', incomplete: false });
  t.throws(() => spec('ls').fromCli({ pattern: 'lib**' }), UsageError);
  t.throws(() => spec('ls').fromCli({ pattern: 'lib**' }), /^PATTERN: "\*\*" must be a whole segment/);
  t.equal(spec('ls').parse({ command: 'ls', pattern: 7 }), undefined, 'a malformed body');
  const base = { layers: { cached: 0, total: 0 }, missingConfigs: 0, platforms: [], complete: false };
  t.equal(completeness({ ...base } as never), 'no image', 'an index none of whose platforms is here');
  t.equal(completeness({ ...base, layers: { cached: 3, total: 3 }, missingConfigs: 1 } as never), '3/3 layers, no config');
  t.equal(completeness({ ...base, layers: { cached: 4, total: 6 }, platforms: ['linux/amd64', 'linux/arm64'] } as never), '4/6 layers, 2 platforms');
  t.equal(spec('ls').note?.({ tags: [], blobs: 0, bytes: 0, pinSources: ['pins.json'] }), 'PINNED shows pins.json only: storage.pin and the sync entries are in the config (give --config FILE)');
  const record = { digest: 'sha256:0' as never, mediaType: 'x', size: 1, fetchedAt: 100 };
  t.equal(tagLastUsed(record), 100, 'imported, or written before pulls were recorded: when upstream confirmed it');
  t.equal(tagLastUsed({ ...record, pulledAt: 300, syncedAt: 200 }), 300, 'a client pull after a sync');
  t.equal(tagLastUsed({ ...record, pulledAt: 150, syncedAt: 400 }), 400, 'a sync after a client pull: prune --older-than keeps what sync keeps');
  t.equal(formatBytes(80_000_000), '76.3 MiB');
  t.equal(formatTime(Date.UTC(2026, 11, 6, 9, 1, 7, 345)), '2026-12-06T09:01:07Z');
  t.equal(formatTime(new Date(Date.UTC(2026, 0, 2))), '2026-01-02T00:00:00Z');
});

t.test('gc keeps pinned content no tag reaches when the recency snapshot is lost (a serve killed -9)', async (t) => {
  const reg = await startTestRegistry(t);
  const [old, next] = ['lost-old', 'lost-new'].map((n) => quickImage(n)) as [Image, Image];
  const options = { upstreams: { 'docker.io': { url: reg.url } }, manifestTTL: '0', pin: ['docker.io/team/**'] };
  const first = await startMirror(t, options);
  reg.pushImage('team/app', 'v1', old);
  await pull(t, first.url, 'team/app', 'v1', [old.config, ...old.layers]);
  reg.pushImage('team/app', 'v1', next);
  await pull(t, first.url, 'team/app', 'v1', [next.config, ...next.layers]);
  await first.close();
  // Killed before its first flush, a serve leaves no snapshot: the next start adopts every file
  // knowing no repository, so only the metadata's links still say what the pinned repository holds.
  rmSync(storageLayout(first.storage).indexSnapshot);
  const second = await startMirror(t, { ...options, storage: first.storage });
  const gc = await callAdmin(second.storage, 'POST', '/v1/command', { command: 'gc', dryRun: false });
  t.equal(gc.status, 200);
  t.same((gc.body as { blobs: unknown[] }).blobs, [], 'nothing pinned is collected');
  for (const b of [old.config, ...old.layers]) t.equal((await request(`${second.url}/v2/team/app/blobs/${b.digest}`)).status, 200, `${b.digest.slice(0, 19)} is still served`);
  t.equal(reg.count({ kind: 'blob', method: 'GET', pathIncludes: old.layers[0]!.digest }), 1, 'from the cache, not fetched again');
});
