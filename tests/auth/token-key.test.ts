import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK } from 'jose';
import { ConfigError } from '../../src/config/index.js';
import { request } from '../fixtures/http.js';
import { buildMirror, startMirror, type TestMirror } from '../fixtures/mirror.js';
import { regmirror as cli } from '../fixtures/regmirror-process.js';

const upstreams = { 'docker.io': { url: 'http://127.0.0.1:9', library: true } };

/** The start-up line about the signing key. */
function keyLine(mirror: TestMirror): { msg: string; kid: string; alg: string; file: string } | undefined {
  return mirror.logs.map((l) => JSON.parse(l) as { msg: string; kid: string; alg: string; file: string }).find((l) => l.msg.startsWith('token signing key'));
}

async function anonymousToken(mirror: TestMirror): Promise<string> {
  const res = await request(`${mirror.url}/v2/token?service=regmirror`);
  return (JSON.parse(res.body.toString()) as { token: string }).token;
}

t.test('the generated key is made on the first start and reused by every later one', async (t) => {
  const storage = mkdtempSync(path.join(os.tmpdir(), 'regmirror-key-app-'));
  t.teardown(() => rmSync(storage, { recursive: true, force: true }));
  const first = await startMirror(t, { upstreams, storage, sections: { auth: {} } });
  const generated = keyLine(first);
  t.match(generated, { msg: 'token signing key generated', alg: 'ES256', file: path.join(storage, 'auth', 'signing-key.pem') });
  const token = await anonymousToken(first);
  t.equal(decodeProtectedHeader(token).kid, generated?.kid);
  await first.close();

  const second = await startMirror(t, { upstreams, storage, sections: { auth: {} } });
  t.match(keyLine(second), { msg: 'token signing key loaded', kid: generated?.kid });
  t.ok(await second.app.tokens!.verify(token), 'a token issued before the restart is still good');
});

t.test('auth.signingKey is used when configured, and nothing is generated', async (t) => {
  const storage = mkdtempSync(path.join(os.tmpdir(), 'regmirror-key-app-'));
  t.teardown(() => rmSync(storage, { recursive: true, force: true }));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(path.join(storage, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  // Relative to the config file's directory, which the fixture makes the storage directory.
  const mirror = await startMirror(t, { upstreams, storage, sections: { auth: { signingKey: 'key.pem' } } });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  t.match(keyLine(mirror), { msg: 'token signing key loaded', alg: 'RS256', kid });
  t.same(decodeProtectedHeader(await anonymousToken(mirror)), { alg: 'RS256', typ: 'JWT', kid });
  t.notOk(existsSync(path.join(storage, 'auth')), 'no key generated');
});

t.test('a bad key file stops the start with a clear error', async (t) => {
  const storage = mkdtempSync(path.join(os.tmpdir(), 'regmirror-key-app-'));
  t.teardown(() => rmSync(storage, { recursive: true, force: true }));
  writeFileSync(path.join(storage, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const mirror = buildMirror(t, { upstreams, storage, sections: { auth: { signingKey: 'cert.pem' } } });
  const err = await mirror.start().catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  t.match((err as Error).message, `auth.signingKey: ${path.join(storage, 'cert.pem')}: not a PEM private key`);

  const config = path.join(storage, 'c.json');
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' }, auth: { signingKey: 'cert.pem' }, listen: '127.0.0.1:0' }));
  const run = await cli(['serve', '--config', config]);
  t.equal(run.code, 2, 'serve exits 2, as for any bad config');
  t.match(run.stderr, /^regmirror: config error: auth\.signingKey: .*cert\.pem: not a PEM private key/);
});
