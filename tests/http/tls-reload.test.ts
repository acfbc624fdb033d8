import t from 'tap';
import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { TlsReloader, type TlsReloaderOptions } from '../../src/http/index.js';
import { createLogger } from '../../src/observability/index.js';
import { until } from '../fixtures/poll.js';
import { certFiles, fingerprint, makePki } from '../fixtures/tls.js';

// The reloader on its own: each of its two ways of noticing a change, its serialising of checks,
// and what close() stops. (tests/http/tls.test.ts covers it behind a listener.)

function reloader(t: { teardown(fn: () => unknown): void }, files: TlsReloaderOptions['files'], options: Partial<TlsReloaderOptions> = {}) {
  const applied: string[] = [];
  const logs: string[] = [];
  const r = new TlsReloader({
    files,
    apply: (context: SecureContextOptions) => void applied.push(new X509Certificate(context.cert as Buffer).fingerprint256),
    logger: createLogger('debug', { write: (l: string) => void logs.push(l) }),
    ...options,
  });
  t.teardown(() => r.close());
  return { r, applied, logs };
}

t.test('the periodic check alone notices a change (fs.watch misses some mounts)', async (t) => {
  const pki = await makePki(t);
  const [a, b] = await Promise.all([pki.server('a'), pki.server('b')]);
  const files = certFiles(t, a, 'plain');
  const { r, applied } = reloader(t, { ...files, clientCA: undefined }, { watch: false, checkIntervalMs: 20 });
  t.equal((await r.start()).fingerprint, fingerprint(a.cert));
  files.overwrite(b);
  await until('the new certificate applied', () => applied, (x) => x.at(-1) === fingerprint(b.cert));
  t.equal(r.material?.fingerprint, fingerprint(b.cert));
});

t.test('watching alone notices a change, and close() stops both', async (t) => {
  const pki = await makePki(t);
  const [a, b, c] = await Promise.all([pki.server('a'), pki.server('b'), pki.server('c')]);
  const files = certFiles(t, a, 'secret');
  const { r, applied } = reloader(t, { ...files, clientCA: pki.caCert }, { checkIntervalMs: 3_600_000 });
  await r.start();
  files.swap(b);
  await until('the new certificate applied', () => applied, (x) => x.at(-1) === fingerprint(b.cert));
  r.close();
  files.swap(c);
  await r.check();
  t.same(applied, [fingerprint(a.cert), fingerprint(b.cert)], 'nothing applied after close');
});

t.test('checks run one at a time; one asked for during another runs after it', async (t) => {
  const pki = await makePki(t);
  const [a, b, c] = await Promise.all([pki.server('a'), pki.server('b'), pki.server('c')]);
  const files = certFiles(t, a, 'plain');
  const applied: string[] = [];
  let joined: Promise<void> | undefined;
  const { r } = reloader(t, { ...files, clientCA: undefined }, {
    watch: false,
    checkIntervalMs: 3_600_000,
    // A renewal landing while b is being applied: the check asked for now must run after this one.
    apply: (context) => {
      const fp = new X509Certificate(context.cert as Buffer).fingerprint256;
      applied.push(fp);
      if (fp === fingerprint(b.cert)) {
        files.overwrite(c);
        joined = r.check();
      }
    },
  });
  await r.start();
  files.overwrite(b);
  const first = r.check();
  await first;
  t.equal(joined, first, 'the running check was joined');
  t.same(applied, [fingerprint(a.cert), fingerprint(b.cert), fingerprint(c.cert)], 'and the change made during it applied after it');
});

t.test('a context the server refuses is a warning, never a crash', async (t) => {
  const pki = await makePki(t);
  const [a, b] = await Promise.all([pki.server('a'), pki.server('b')]);
  const files = certFiles(t, a, 'plain');
  let refuse = false;
  const { r, logs } = reloader(t, { ...files, clientCA: undefined }, {
    watch: false,
    checkIntervalMs: 3_600_000,
    apply: () => {
      if (refuse) throw new Error('refused');
    },
  });
  await r.start();
  refuse = true;
  files.overwrite(b);
  await r.check();
  t.equal(r.material?.fingerprint, fingerprint(a.cert), 'the previous certificate stays');
  t.match(logs.map((l) => JSON.parse(l) as object), [{ level: 'warn', error: { message: 'refused' }, fingerprint: fingerprint(a.cert) }]);
});
