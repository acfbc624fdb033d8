import t from 'tap';
import { ConfigError, ConfigErrors, parseConfig } from '../../src/config/index.js';
import { redactedConfig } from '../../src/app.js';

const parse = (upstream: Record<string, unknown>) => parseConfig({ upstreams: { 'docker.io': upstream } }, { baseDir: '/x', env: {} }).upstreams.get('docker.io');
const hrefs = (u: ReturnType<typeof parse>) => u?.endpoints?.map((e) => e.href);

t.test('url alone: one endpoint, the default cooldown', async (t) => {
  const u = parse({ url: 'https://origin.example' });
  t.same(hrefs(u), ['https://origin.example/']);
  t.equal(u?.endpointCooldownMs, 30_000);
});

t.test('endpoints alone: tried in order; the last is the url (the authoritative origin)', async (t) => {
  const u = parse({ endpoints: ['https://mirror.example/base', 'https://origin.example'], endpointCooldown: '2m' });
  t.same(hrefs(u), ['https://mirror.example/base', 'https://origin.example/']);
  t.equal(u?.url?.href, 'https://origin.example/');
  t.equal(u?.offline, false, 'endpoints make an upstream online as url does');
  t.equal(u?.endpointCooldownMs, 120_000);
});

t.test('endpoints with url: url is tried last unless the list places it', async (t) => {
  t.same(hrefs(parse({ url: 'https://origin.example', endpoints: ['https://mirror.example'] })), ['https://mirror.example/', 'https://origin.example/']);
  const placed = parse({ url: 'https://origin.example', endpoints: ['https://origin.example/', 'https://mirror.example'] });
  t.same(hrefs(placed), ['https://origin.example/', 'https://mirror.example/'], 'listed first: asked first');
  t.equal(placed?.url?.href, 'https://origin.example/');
});

t.test('offline with endpoints: kept, never contacted', async (t) => {
  const u = parse({ offline: true, endpoints: ['https://mirror.example'] });
  t.equal(u?.offline, true);
  t.same(hrefs(u), ['https://mirror.example/']);
});

const bad: [string, Record<string, unknown>, string, RegExp][] = [
  ['an empty list', { endpoints: [] }, 'upstreams.docker.io.endpoints', /must not be empty/],
  ['an empty list beside url', { url: 'https://x', endpoints: [] }, 'upstreams.docker.io.endpoints', /must not be empty/],
  ['not a list', { endpoints: 'https://x' }, 'upstreams.docker.io.endpoints', /must be a list/],
  ['an entry without a scheme', { endpoints: ['https://a', 'mirror.example:5000'] }, 'upstreams.docker.io.endpoints[1]', /has no scheme; write "https:\/\/mirror.example:5000"/],
  ['an entry with credentials', { endpoints: ['https://u:p@a'] }, 'upstreams.docker.io.endpoints[0]', /must not contain credentials/],
  ['an entry with a query', { endpoints: ['https://a/?ns=docker.io'] }, 'upstreams.docker.io.endpoints[0]', /query/],
  ['an entry ending in /v2', { endpoints: ['https://a/v2/'] }, 'upstreams.docker.io.endpoints[0]', /must not end in \/v2/],
  ['an entry not a string', { endpoints: [5] }, 'upstreams.docker.io.endpoints[0]', /http\(s\) URL/],
  ['a duplicate', { endpoints: ['https://a/base', 'https://b', 'https://a/base/'] }, 'upstreams.docker.io.endpoints[2]', /listed twice/],
  ['a cooldown that is not a duration', { url: 'https://x', endpointCooldown: 'soon' }, 'upstreams.docker.io.endpointCooldown', /positive duration/],
  ['a zero cooldown', { url: 'https://x', endpointCooldown: '0' }, 'upstreams.docker.io.endpointCooldown', /positive duration/],
];
for (const [name, upstream, key, message] of bad) {
  t.test(`rejects ${name}, naming ${key}`, async (t) => {
    const err = t.throws(() => parse(upstream)) as unknown;
    t.type(err, ConfigError);
    t.equal((err as ConfigError).key, key);
    t.match((err as ConfigError).message, message);
  });
}

t.test('config check reports a bad endpoint and a bad cooldown in one pass', async (t) => {
  const err = t.throws(() => parse({ endpoints: ['nope'], endpointCooldown: 'x' })) as unknown;
  t.type(err, ConfigErrors);
  t.same((err as ConfigErrors).errors.map((e) => e.key), ['upstreams.docker.io.endpointCooldown', 'upstreams.docker.io.endpoints[0]']);
});

t.test('the start-up config line shows the endpoints and reads back as the same config', async (t) => {
  const file = { upstreams: { 'docker.io': { url: 'https://origin.example', endpoints: ['https://mirror.example'], endpointCooldown: '45s' } } };
  const config = parseConfig(file, { baseDir: '/' });
  const logged = JSON.parse(JSON.stringify(redactedConfig(config))) as { upstreams: Record<string, Record<string, unknown>> };
  t.match(logged.upstreams['docker.io'], { url: 'https://origin.example/', endpoints: ['https://mirror.example/', 'https://origin.example/'], endpointCooldown: '45s' });
  const { sync: _sync, ...rest } = logged as Record<string, unknown>;
  t.same(parseConfig(rest, { baseDir: '/' }).upstreams, config.upstreams);
});
