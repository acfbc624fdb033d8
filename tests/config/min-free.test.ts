import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const base = { upstreams: { 'docker.io': { url: 'https://registry.example' } } };

function minFree(value: unknown): unknown {
  return parseConfig({ ...base, storage: { minFree: value } }, { baseDir: '/x', env: {} }).storage.minFree;
}

t.test('storage.minFree: 5% of the disk by default, a share or a size', async (t) => {
  t.same(parseConfig(base, { baseDir: '/x', env: {} }).storage.minFree, { kind: 'percent', percent: 5 });
  t.same(minFree('2%'), { kind: 'percent', percent: 2 });
  t.same(minFree(' 0.5 % '), { kind: 'percent', percent: 0.5 });
  t.same(minFree('0%'), { kind: 'percent', percent: 0 });
  t.same(minFree('2GiB'), { kind: 'bytes', bytes: 2 * 2 ** 30 });
  t.same(minFree(0), { kind: 'bytes', bytes: 0 });
});

for (const [what, value] of [
  ['more than 90%', '95%'],
  ['not a size', 'lots'],
  ['a negative share', '-1%'],
  ['a list', ['5%']],
] as const) {
  t.test(`storage.minFree rejects ${what}`, async (t) => {
    const err = t.throws(() => minFree(value)) as unknown;
    t.type(err, ConfigError);
    t.equal((err as ConfigError).key, 'storage.minFree');
  });
}
