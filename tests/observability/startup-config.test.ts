import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { redactedConfig } from '../../src/app.js';

const FILE = {
  listen: '127.0.0.1:5000',
  storage: { path: '/var/lib/regmirror', maxSize: '10GiB', minFree: '2GiB', pin: ['docker.io/library/*'] },
  upstreams: {
    'docker.io': { url: 'https://registry.invalid', timeouts: { connect: '5s' } },
    'ghcr.io': { url: 'https://ghcr.invalid/base', username: 'bot', password: 'canary-startup-secret', connections: 8 },
    offline: { offline: true },
  },
  defaultUpstream: 'docker.io',
  manifestTTL: '10m',
  shutdownGrace: '45s',
  metrics: { listen: '[::1]:9090' },
  sync: { concurrency: 2, entries: [{ repository: 'library/nginx', tags: { semver: '>=1.25', latest: 3 }, schedule: '6h' }] },
  access: { trustedProxies: ['10.0.0.0/8'] },
};

t.test('the start-up config reads back as the same config: the file\'s key names, defaults filled in', async (t) => {
  const config = parseConfig(FILE, { baseDir: '/' });
  const logged = JSON.parse(JSON.stringify(redactedConfig(config))) as Record<string, Record<string, unknown>>;
  t.match(logged, {
    listen: '127.0.0.1:5000',
    storage: { maxSize: '10.0GiB', minFree: '2.0GiB', pin: ['docker.io/library/*'], hashThread: false },
    manifestTTL: '10m',
    shutdownGrace: '45s',
    metrics: { listen: '[::1]:9090', perRepository: 0 },
    upstreams: { 'docker.io': { timeouts: { connect: '5s', headers: '30s', bodyIdle: '1m' }, library: true }, 'ghcr.io': { password: '[redacted]', connections: 8 } },
    log: { level: 'info' },
  });
  t.notMatch(JSON.stringify(logged), /canary-startup-secret/, 'the password is not logged');
  t.notMatch(JSON.stringify(logged), /"\w+Ms"|"\w+TTLms"/, 'no internal key names');
  // Everything but the redacted password and the sync section's internal fields parses back to the same config.
  const upstreams = logged['upstreams'] as Record<string, Record<string, unknown>>;
  upstreams['ghcr.io']!['password'] = 'canary-startup-secret';
  const { sync: _sync, ...rest } = logged;
  const again = parseConfig({ ...rest, sync: FILE.sync }, { baseDir: '/' });
  t.same(again, config, 'parseConfig(logged) is the running config');
});

t.test('credentials in a URL and a Redis password are redacted', async (t) => {
  const config = parseConfig({ upstreams: { 'docker.io': { url: 'https://registry.invalid' } }, storage: { metadata: 'redis://:canary-redis@127.0.0.1:6379/2' } }, { baseDir: '/' });
  const text = JSON.stringify(redactedConfig(config));
  t.notMatch(text, /canary-redis/);
  t.match(text, /"metadata":"redis:\/\/\[redacted\]@127\.0\.0\.1:6379\/2"/);
  t.match(text, /"metadataNamespace":"regmirror"/);
});
