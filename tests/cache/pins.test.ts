import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { PinSet } from '../../src/mirror/index.js';

t.test('PinSet decides per upstream and grows with with()', async (t) => {
  const pins = new PinSet([{ upstream: 'docker.io', repository: 'library/*' }]);
  t.ok(pins.matches('docker.io', 'library/alpine'));
  t.notOk(pins.matches('ghcr.io', 'library/alpine'), 'another upstream');
  t.ok(pins.matchesKey('docker.io/library/alpine'));
  t.notOk(pins.matchesKey('docker.io/team/app'));
  const more = pins.with([{ upstream: 'ghcr.io', repository: 'team/**' }]);
  t.ok(more.matchesKey('ghcr.io/team/a/b'));
  t.notOk(pins.matchesKey('ghcr.io/team/a/b'), 'the original is unchanged');
  t.ok(new PinSet([]).empty);
});

const upstreams = { 'docker.io': { url: 'https://hub.example' }, 'ghcr.io': { url: 'https://ghcr.example' } };
const parse = (pin: unknown) => parseConfig({ upstreams, defaultUpstream: 'docker.io', storage: { pin } }, { baseDir: '/srv', env: {} });

t.test('storage.pin: parsed, aliases resolved, library/ added like a pull', async (t) => {
  t.same(parse(undefined).storage.pin, []);
  t.same(parse(['docker.io/library/*', 'index.docker.io/alpine', 'ghcr.io/team/**', 'ghcr.io/one']).storage.pin, [
    { upstream: 'docker.io', repository: 'library/*' },
    { upstream: 'docker.io', repository: 'library/alpine' },
    { upstream: 'ghcr.io', repository: 'team/**' },
    { upstream: 'ghcr.io', repository: 'one' },
  ]);
});

t.test('storage.pin: one precise line per bad entry', async (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    ['docker.io/*', 'storage.pin', /must be a list/],
    [[42], 'storage.pin[0]', /must be a string/],
    [['quay.io/a/*'], 'storage.pin[0]', /must start with a configured upstream \(docker\.io, ghcr\.io\)/],
    [['docker.io'], 'storage.pin[0]', /repository pattern is empty/],
    [['docker.io/library/**x'], 'storage.pin[0]', /"\*\*" must be a whole segment/],
    [['ghcr.io/a', 'ghcr.io/Team/*'], 'storage.pin[1]', /may hold only lowercase/],
  ];
  for (const [pin, key, message] of cases) {
    try {
      parse(pin);
      t.fail(`accepted ${JSON.stringify(pin)}`);
    } catch (err) {
      t.type(err, ConfigError);
      t.equal((err as ConfigError).key, key);
      t.match((err as Error).message, message);
      t.notOk((err as Error).message.includes('\n'), 'one line');
    }
  }
});
