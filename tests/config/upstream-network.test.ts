import t, { type Test } from 'tap';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { ConfigError, ConfigErrors, parseConfig } from '../../src/config/index.js';
import { noProxyMatcher, proxyFor } from '../../src/upstream/dispatchers.js';
import { regmirror as cli } from '../fixtures/regmirror-process.js';
import { makePki } from '../fixtures/tls.js';

// upstreams.<name>.proxy, ca, clientCert, clientKey and insecureSkipVerify, and the proxy environment.

const parse = (upstream: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, baseDir = '/srv') =>
  parseConfig({ upstreams: { 'r.test': { url: 'https://r.test', ...upstream } } }, { baseDir, env }).upstreams.get('r.test')!;

function configError(t: Test, read: () => unknown, key: string, message: RegExp): void {
  try {
    read();
    t.fail(`expected a config error on ${key}`);
  } catch (err) {
    t.type(err, ConfigError);
    t.equal((err as ConfigError).key, key);
    t.match((err as ConfigError).reason, message);
  }
}

t.test('proxy: the environment by default (lower-case first, HTTPS falling back to HTTP), overridden per upstream', async (t) => {
  t.same(parse({}).proxy, { source: 'none', http: undefined, https: undefined, noProxy: [] }, 'no environment: direct');
  const env = parse({}, { HTTP_PROXY: 'proxy.corp:3128', NO_PROXY: 'Internal.Corp, .svc ,10.0.0.0/8' }).proxy;
  t.equal(env.source, 'env');
  t.equal(env.http?.href, 'http://proxy.corp:3128/', 'a bare host:port is read as http://');
  t.equal(env.https?.href, 'http://proxy.corp:3128/', 'HTTPS_PROXY falls back to HTTP_PROXY');
  t.same(env.noProxy, ['internal.corp', '.svc', '10.0.0.0/8']);
  const both = parse({}, { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }).proxy;
  t.equal(both.https?.host, 'lower:1');
  t.equal(both.http, undefined, 'only https targets are proxied');
  const own = parse({ proxy: 'https://u:p@own.proxy:8443' }, { HTTPS_PROXY: 'http://env:1' }).proxy;
  t.same([own.source, own.https?.href, own.http?.href, own.noProxy], ['config', 'https://u:p@own.proxy:8443/', 'https://u:p@own.proxy:8443/', []]);
  t.same(parse({ proxy: 'none' }, { HTTPS_PROXY: 'http://env:1' }).proxy.source, 'none');
  const offline = parseConfig({ upstreams: { a: { offline: true, proxy: 'not a url', ca: '/nowhere.pem' } } }, { baseDir: '/', env: {} });
  t.equal(offline.upstreams.get('a')?.proxy.source, 'none', 'an offline upstream reads none of it');
});

t.test('proxy: bad values are config errors naming the key', async (t) => {
  configError(t, () => parse({ proxy: 42 }), 'upstreams.r.test.proxy', /proxy URL .* or "none"/);
  configError(t, () => parse({ proxy: 'socks5://p:1080' }), 'upstreams.r.test.proxy', /http:\/\/ or https:\/\//);
  configError(t, () => parse({ proxy: 'http://p:3128/path' }), 'upstreams.r.test.proxy', /without a path/);
  configError(t, () => parse({ proxy: 'http://[nope' }), 'upstreams.r.test.proxy', /not a valid proxy URL/);
  configError(t, () => parse({}, { HTTPS_PROXY: 'ftp://p' }), 'HTTPS_PROXY (environment)', /http:\/\/ or https/);
});

t.test('NO_PROXY matching as curl and Go read it', async (t) => {
  const m = noProxyMatcher(['corp.example', '.svc', '*.lan', 'r.test:5000', '10.0.0.0/8', '[::1]:443', 'fd00::/8', '1.2.3.4/99']);
  const cases: [string, boolean][] = [
    ['https://corp.example/v2/', true],
    ['https://api.corp.example/v2/', true],
    ['https://notcorp.example/v2/', false],
    ['https://svc/v2/', false],
    ['https://reg.ns.svc/v2/', true],
    ['http://box.lan/', true],
    ['http://r.test:5000/', true],
    ['http://r.test:5001/', false],
    ['http://10.1.2.3/', true],
    ['http://11.1.2.3/', false],
    ['https://[::1]/', true],
    ['http://[::1]/', false],
    ['http://[fd00::5]:80/', true],
  ];
  for (const [url, bypass] of cases) t.equal(m(new URL(url)), bypass, url);
  t.equal(noProxyMatcher(['*'])(new URL('https://any.where/')), true, '* is every host');
  const proxy = { source: 'env' as const, http: new URL('http://p:1'), https: undefined, noProxy: ['direct.test'] };
  t.equal(proxyFor(proxy, new URL('http://x.test/'))?.href, 'http://p:1/');
  t.equal(proxyFor(proxy, new URL('https://x.test/')), undefined, 'no https proxy: direct');
  t.equal(proxyFor(proxy, new URL('http://direct.test/')), undefined);
});

t.test('ca, clientCert/clientKey and insecureSkipVerify: read and checked at load', async (t) => {
  const pki = await makePki(t);
  const client = await pki.client('mirror');
  const other = await pki.client('someone-else');
  const dir = t.testdir({ 'not.pem': 'hello', 'broken.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' });
  const u = parse({ ca: pki.caCert, clientCert: client.cert, clientKey: client.key, insecureSkipVerify: true });
  t.equal(u.tls.ca?.file, pki.caCert);
  t.equal(u.tls.ca?.pem, readFileSync(pki.caCert, 'utf8'));
  t.equal(u.tls.client?.cert.file, client.cert);
  t.equal(u.tls.insecureSkipVerify, true);
  t.equal(parse({ ca: path.basename(pki.caCert) }, {}, pki.dir).tls.ca?.file, pki.caCert, 'relative to the config file');
  t.same(parse({}).tls, { ca: undefined, client: undefined, insecureSkipVerify: false });

  configError(t, () => parse({ ca: path.join(dir, 'missing.pem') }), 'upstreams.r.test.ca', /cannot read .*missing\.pem: ENOENT/);
  configError(t, () => parse({ ca: path.join(dir, 'not.pem') }), 'upstreams.r.test.ca', /holds no PEM certificate/);
  configError(t, () => parse({ ca: path.join(dir, 'broken.pem') }), 'upstreams.r.test.ca', /certificate 1 in .* is not a valid PEM certificate/);
  configError(t, () => parse({ clientCert: client.cert }), 'upstreams.r.test.clientKey', /is required with clientCert/);
  configError(t, () => parse({ clientKey: client.key }), 'upstreams.r.test.clientCert', /is required with clientKey/);
  configError(t, () => parse({ clientCert: client.cert, clientKey: path.join(dir, 'not.pem') }), 'upstreams.r.test.clientKey', /not an unencrypted PEM private key/);
  configError(t, () => parse({ clientCert: client.cert, clientKey: other.key }), 'upstreams.r.test.clientKey', /is not the key of/);
  configError(t, () => parse({ clientCert: path.join(dir, 'not.pem'), clientKey: client.key }), 'upstreams.r.test.clientCert', /holds no PEM certificate/);
  configError(t, () => parse({ insecureSkipVerify: 'yes' }), 'upstreams.r.test.insecureSkipVerify', /true or false/);
  try {
    parseConfig({ upstreams: { 'r.test': { url: 'https://r.test', ca: path.join(dir, 'not.pem'), proxy: 1 } } }, { baseDir: '/', env: {} });
    t.fail('expected errors');
  } catch (err) {
    t.same((err as ConfigErrors).errors.map((e) => e.key), ['upstreams.r.test.proxy', 'upstreams.r.test.ca'], 'config check lists both');
  }
});

t.test('the CLI: a CA file that is not PEM is one line and exit 2', async (t) => {
  const dir = t.testdir({ 'not.pem': 'hello', 'c.json': JSON.stringify({ upstreams: { 'r.test': { url: 'https://r.test', ca: 'not.pem' } } }) });
  const run = await cli(['serve', '-c', path.join(dir, 'c.json')]);
  t.equal(run.code, 2);
  t.equal(run.stderr.trim(), `regmirror: config error: upstreams.r.test.ca: ${path.join(dir, 'not.pem')} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
});
