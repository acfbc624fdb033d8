import t from 'tap';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { ConfigError, loadConfigFile, parseConfig, parseDuration, parseSize, redactRedisUrl } from '../../src/config/index.js';

const base = { upstreams: { 'docker.io': { url: 'https://registry.example' } } };

t.test('defaults', async (t) => {
  const c = parseConfig(base, { baseDir: '/srv/mirror', env: {} });
  t.same(c.listen, { host: '0.0.0.0', port: 5000 });
  t.equal(c.storage.path, '/srv/mirror/data');
  t.equal(c.storage.maxSize, 20 * 2 ** 30);
  t.equal(c.defaultUpstream, 'docker.io');
  t.equal(c.manifestTTLms, 5 * 60_000);
  t.equal(c.log.level, 'info');
  t.equal(c.storage.hashThread, false, 'hashing stays on the main thread unless asked');
  t.equal(parseConfig({ ...base, storage: { hashThread: true } }, { baseDir: '/x', env: {} }).storage.hashThread, true);
  const hub = c.upstreams.get('docker.io');
  t.equal(hub?.officialLibrary, true, 'docker.io gets library/ for one-segment names');
  t.same(hub?.aliases, ['index.docker.io', 'registry-1.docker.io']);
  t.same(hub?.timeouts, { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 60_000 });
});

t.test('the shipped mirror.config.json is valid', async (t) => {
  const c = await loadConfigFile(path.resolve(import.meta.dirname, '../../mirror.config.json'), {}, {});
  t.equal(c.upstreams.get('docker.io')?.url?.protocol, 'https:');
  t.same(c.listen, { host: '0.0.0.0', port: 5000 });
  t.equal(c.storage.path, path.resolve(import.meta.dirname, '../../data'));
});

t.test('a full config and CLI overrides', async (t) => {
  const c = parseConfig(
    {
      listen: '127.0.0.1:5001',
      storage: { path: 'cache', maxSize: '512MB' },
      upstreams: {
        'docker.io': { url: 'https://hub.example', username: 'u', passwordEnv: 'HUB_PW', connections: 4, timeouts: { connect: '2s', headers: '5s', bodyIdle: '1m' } },
        'ghcr.io': { url: 'https://ghcr.example/base', library: false, aliases: ['ghcr.alias'] },
      },
      defaultUpstream: 'ghcr.io',
      manifestTTL: '1h30m',
      log: { level: 'debug' },
    },
    { baseDir: '/etc/regmirror', env: { HUB_PW: 's3cret' }, overrides: { listen: '[::1]:0', storage: 'rel', logLevel: 'warn' } },
  );
  t.same(c.listen, { host: '::1', port: 0 });
  t.equal(c.storage.path, path.resolve('rel'), 'a --storage override is relative to the working directory');
  t.equal(c.storage.maxSize, 512e6);
  t.equal(c.upstreams.get('docker.io')?.password, 's3cret');
  t.equal(c.upstreams.get('docker.io')?.connections, 4);
  t.same(c.upstreams.get('docker.io')?.timeouts, { connectMs: 2000, headersMs: 5000, bodyIdleMs: 60_000 });
  t.equal(c.upstreams.get('ghcr.io')?.url?.pathname, '/base');
  t.equal(c.upstreams.get('ghcr.io')?.officialLibrary, false);
  t.equal(c.defaultUpstream, 'ghcr.io');
  t.equal(c.manifestTTLms, 90 * 60_000);
  t.equal(c.log.level, 'warn');
});

t.test('upstreams.<name>.offline: set, or implied by a missing url; credentials are not resolved', async (t) => {
  const c = parseConfig(
    {
      upstreams: {
        'docker.io': { url: 'https://hub.example' },
        'air.local': {},
        'carried.example': { url: 'https://carried.example', offline: true, username: 'u', passwordEnv: 'ONLY_ON_THE_CONNECTED_SIDE' },
      },
      defaultUpstream: 'air.local',
    },
    { baseDir: '/x', env: {} },
  );
  t.equal(c.upstreams.get('docker.io')?.offline, false, 'online by default');
  const air = c.upstreams.get('air.local');
  t.equal(air?.offline, true, 'no url means offline');
  t.equal(air?.url, undefined);
  const carried = c.upstreams.get('carried.example');
  t.equal(carried?.offline, true);
  t.equal(carried?.url?.href, 'https://carried.example/', 'the url is kept (shown on the status page)');
  t.equal(carried?.username, undefined, 'never sent, so not kept');
  t.equal(carried?.password, undefined, 'passwordEnv need not be set on the disconnected side');
  t.equal(c.defaultUpstream, 'air.local', 'an offline upstream may be the default');
  const err = t.throws(() => parseConfig({ upstreams: { 'air.local': { offline: false } } }, { baseDir: '/x', env: {} })) as Error;
  t.equal(err.message, 'upstreams.air.local.url: is required unless the upstream is offline (or endpoints lists its URLs)');
});

t.test('a sync entry on an offline upstream is refused, saying what to do instead', async (t) => {
  const raw = { upstreams: { 'air.local': { offline: true, url: 'https://x' } }, sync: [{ repository: 'team/app', tags: ['1'] }] };
  const err = t.throws(() => parseConfig(raw, { baseDir: '/x', env: {} })) as ConfigError;
  t.equal(err.key, 'sync.entries[0].upstream');
  t.match(err.message, /air\.local is offline .*storage\.pin/);
  t.equal(parseConfig({ ...raw, upstreams: { 'air.local': { url: 'https://x' } } }, { baseDir: '/x', env: {} }).sync.entries.length, 1, 'the same entry online is fine');
});

const bad: Array<[string, unknown, string, NodeJS.ProcessEnv?]> = [
  ['not an object', 42, ''],
  ['unknown top key', { ...base, lisen: 'x' }, 'lisen'],
  ['listen without port', { ...base, listen: 'localhost' }, 'listen'],
  ['listen port too big', { ...base, listen: '0.0.0.0:70000' }, 'listen'],
  ['bad size', { ...base, storage: { maxSize: '20 parsecs' } }, 'storage.maxSize'],
  ['zero size', { ...base, storage: { maxSize: 0 } }, 'storage.maxSize'],
  ['unknown storage key', { ...base, storage: { size: '1GB' } }, 'storage.size'],
  ['empty storage path', { ...base, storage: { path: '' } }, 'storage.path'],
  ['no upstreams', { upstreams: {} }, 'upstreams'],
  ['upstreams missing', {}, 'upstreams'],
  ['bad upstream name', { upstreams: { 'Docker Hub': { url: 'https://x' } } }, 'upstreams.Docker Hub'],
  ['upstream not an object', { upstreams: { 'docker.io': 'https://x' } }, 'upstreams.docker.io'],
  ['url missing on an upstream said to be online', { upstreams: { 'docker.io': { offline: false } } }, 'upstreams.docker.io.url'],
  ['offline not boolean', { upstreams: { 'docker.io': { url: 'https://x', offline: 'yes' } } }, 'upstreams.docker.io.offline'],
  ['offline with a bad url still', { upstreams: { 'docker.io': { url: 'nope', offline: true } } }, 'upstreams.docker.io.url'],
  ['offline with password and passwordEnv', { upstreams: { 'docker.io': { offline: true, password: 'p', passwordEnv: 'P' } } }, 'upstreams.docker.io.password'],
  [
    'a sync entry on an offline upstream',
    { upstreams: { 'docker.io': { url: 'https://x' }, 'air.local': {} }, defaultUpstream: 'docker.io', sync: [{ upstream: 'air.local', repository: 'team/app' }] },
    'sync.entries[0].upstream',
  ],
  ['url not a url', { upstreams: { 'docker.io': { url: 'nope' } } }, 'upstreams.docker.io.url'],
  ['url ftp', { upstreams: { 'docker.io': { url: 'ftp://x' } } }, 'upstreams.docker.io.url'],
  ['url with credentials', { upstreams: { 'docker.io': { url: 'https://u:p@x' } } }, 'upstreams.docker.io.url'],
  ['url with query', { upstreams: { 'docker.io': { url: 'https://x/?a=1' } } }, 'upstreams.docker.io.url'],
  ['unknown upstream key', { upstreams: { 'docker.io': { url: 'https://x', user: 'u' } } }, 'upstreams.docker.io.user'],
  ['password and passwordEnv', { upstreams: { 'docker.io': { url: 'https://x', username: 'u', password: 'p', passwordEnv: 'P' } } }, 'upstreams.docker.io.password'],
  ['passwordEnv unset', { upstreams: { 'docker.io': { url: 'https://x', username: 'u', passwordEnv: 'NOPE' } } }, 'upstreams.docker.io.passwordEnv', {}],
  ['password without username', { upstreams: { 'docker.io': { url: 'https://x', password: 'p' } } }, 'upstreams.docker.io.username'],
  ['library not boolean', { upstreams: { 'docker.io': { url: 'https://x', library: 'yes' } } }, 'upstreams.docker.io.library'],
  ['aliases not a list', { upstreams: { 'docker.io': { url: 'https://x', aliases: 'a' } } }, 'upstreams.docker.io.aliases'],
  ['alias collision', { upstreams: { 'a.io': { url: 'https://x', aliases: ['b.io'] }, 'b.io': { url: 'https://y' } } }, 'upstreams.b.io.aliases'],
  ['bad timeout', { upstreams: { 'docker.io': { url: 'https://x', timeouts: { connect: 'soon' } } } }, 'upstreams.docker.io.timeouts.connect'],
  ['bad connections', { upstreams: { 'docker.io': { url: 'https://x', connections: 0 } } }, 'upstreams.docker.io.connections'],
  ['default upstream unknown', { ...base, defaultUpstream: 'quay.io' }, 'defaultUpstream'],
  ['default needed with two upstreams', { upstreams: { 'a.io': { url: 'https://x' }, 'b.io': { url: 'https://y' } } }, 'defaultUpstream'],
  ['bad ttl', { ...base, manifestTTL: 'forever' }, 'manifestTTL'],
  ['bad log level', { ...base, log: { level: 'loud' } }, 'log.level'],
  ['metadata not a string', { ...base, storage: { metadata: { redis: 'x' } } }, 'storage.metadata'],
  ['metadata not a url', { ...base, storage: { metadata: 'localhost:6379' } }, 'storage.metadata'],
  ['metadata not redis', { ...base, storage: { metadata: 'http://127.0.0.1:6379' } }, 'storage.metadata'],
  ['metadata with a path', { ...base, storage: { metadata: 'redis://127.0.0.1:6379/x/y' } }, 'storage.metadata'],
  ['metadata with a query', { ...base, storage: { metadata: 'redis://127.0.0.1:6379?db=1' } }, 'storage.metadata'],
  ['namespace without redis', { ...base, storage: { metadataNamespace: 'a' } }, 'storage.metadataNamespace'],
  ['bad namespace', { ...base, storage: { metadata: 'redis://h:1', metadataNamespace: 'a b' } }, 'storage.metadataNamespace'],
  ['hashThread not a boolean', { ...base, storage: { hashThread: 'yes' } }, 'storage.hashThread'],
];
for (const [name, raw, key, env] of bad) {
  t.test(`rejects: ${name}`, async (t) => {
    const err = t.throws(() => parseConfig(raw, { baseDir: '/x', env: env ?? {} })) as unknown;
    t.type(err, ConfigError);
    t.equal((err as ConfigError).key, key);
    t.match((err as ConfigError).message, key === '' ? /./ : `${key}: `);
  });
}

t.test('storage.metadata: embedded by default, or a Redis URL whose password is never echoed', async (t) => {
  t.same(parseConfig(base, { baseDir: '/x', env: {} }).storage.metadata, { kind: 'embedded' });
  const c = parseConfig({ ...base, storage: { metadata: 'redis://:hunter2@10.0.0.5:6379/2', metadataNamespace: 'edge' } }, { baseDir: '/x', env: {} });
  t.same(c.storage.metadata, { kind: 'redis', url: 'redis://:hunter2@10.0.0.5:6379/2', namespace: 'edge' });
  t.equal(redactRedisUrl('redis://:hunter2@10.0.0.5:6379/2'), 'redis://[redacted]@10.0.0.5:6379/2');
  t.equal(redactRedisUrl('redis://10.0.0.5:6379'), 'redis://10.0.0.5:6379');
  const err = t.throws(() => parseConfig({ ...base, storage: { metadata: 'redis//:hunter2@host' } }, { baseDir: '/x', env: {} })) as Error;
  t.notMatch(err.message, /hunter2/);
  t.equal(err.message.split('\n').length, 1, 'one line');
});

t.test('file errors are ConfigErrors', async (t) => {
  const dir = t.testdir({ 'bad.json': '{ not json', 'ok.json': JSON.stringify(base) });
  await t.rejects(loadConfigFile(path.join(dir, 'missing.json')), { name: 'ConfigError', message: /cannot read config file .*ENOENT/ });
  await t.rejects(loadConfigFile(path.join(dir, 'bad.json')), { name: 'ConfigError', message: /not valid JSON/ });
  writeFileSync(path.join(dir, 'ok.json'), JSON.stringify({ ...base, storage: { path: 'c' } }));
  t.equal((await loadConfigFile(path.join(dir, 'ok.json'), {}, {})).storage.path, path.join(dir, 'c'));
});

t.test('sizes and durations', async (t) => {
  t.equal(parseSize('20GiB'), 20 * 2 ** 30);
  t.equal(parseSize('1.5 KB'), 1500);
  t.equal(parseSize('100'), 100);
  t.equal(parseSize(4096), 4096);
  t.equal(parseSize(-1), undefined);
  t.equal(parseSize('1 XB'), undefined);
  t.equal(parseSize(null), undefined);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('2d'), 172_800_000);
  t.equal(parseDuration('0'), 0);
  t.equal(parseDuration(30), 30_000, 'a bare number is seconds');
  t.equal(parseDuration('5 m'), undefined);
  t.equal(parseDuration('m'), undefined);
  t.equal(parseDuration(''), undefined);
  t.equal(parseDuration({}), undefined);
});

t.test('every section words its field errors alike', async (t) => {
  const message = (raw: unknown): string => (t.throws(() => parseConfig(raw, { baseDir: '/x', env: {} })) as Error).message;
  t.equal(message({}), 'upstreams: is required');
  t.equal(message({ ...base, sync: 'often' }), 'sync: must be an object');
  t.match(message({ ...base, colour: 'blue' }), /^colour: unknown key \(allowed: \$schema, listen, .*, audit, policy, cluster\)$/, 'the top level accepts $schema');
  t.equal(message({ ...base, sync: { every: '1h' } }), 'sync.every: unknown key (allowed: entries, concurrency, rateLimitReserve, jitter, retries, maxRetryAfter)');
});
