import t from 'tap';
import bcrypt from 'bcryptjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { CHART, container, helm, helmMissing, mirrorConfig, one, parseManifests, render, valuesFile, workload, type Container, type K8sObject } from '../fixtures/helm.js';
import { request, type RawResponse } from '../fixtures/http.js';
import { quickImage } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { until } from '../fixtures/poll.js';
import { secretVolume } from '../fixtures/secret-volume.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { toolsMissing } from '../fixtures/tools.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);
const openssl = toolsMissing(['openssl']);
if (openssl.skip && openssl.required) t.fail(`helm chart: ${openssl.skip}`);

// The chart's trust-boundary values: auth (users and the token service), access, private upstreams,
// the audit log, and a ServiceMonitor that logs in. Rendered with helm, read by the server's own
// config parser, and run: the rendered sections with the Secrets laid out as the kubelet mounts them.

const VALUES = {
  replicaCount: 2,
  redis: { url: 'redis://redis.mirrors.svc:6379' },
  config: {
    upstreams: {
      'docker.io': { url: 'https://registry-1.docker.io' },
      'ghcr.io': { url: 'https://ghcr.io', username: 'bot', passwordEnv: 'GHCR_TOKEN', private: true },
    },
  },
  credentials: { existingSecret: 'ghcr-token' },
  auth: {
    enabled: true,
    htpasswd: { existingSecret: 'regmirror-users' },
    groups: { platform: ['alice', 'bob'] },
    realm: 'https://mirror.example.internal/v2/token',
    tokenTTL: '10m',
    signingKey: { existingSecret: 'regmirror-signing-key', key: 'key.pem' },
  },
  access: {
    anonymous: ['docker.io/**'],
    rules: [{ repositories: ['ghcr.io/acme/**'], groups: ['platform'], tokens: ['ci'], actions: ['read'] }],
    admin: { groups: ['platform'] },
    metrics: 'admin',
    trustedProxies: ['10.0.0.0/8'],
  },
  audit: { enabled: true, path: '/var/log/regmirror/audit.log', volume: { emptyDir: { sizeLimit: '1Gi' } } },
  serviceMonitor: { enabled: true, basicAuth: { secretName: 'prometheus-login' } },
};

// Replicas also read their pod IP and the cluster secret from the environment the chart gives them.
const ENV = { GHCR_TOKEN: 'x', POD_IP: '10.0.0.5', REGMIRROR_CLUSTER_SECRET: 'a-secret-of-the-release-0123456789' };
const parse = (objects: K8sObject[]) => parseConfig(mirrorConfig(objects), { baseDir: '/nonexistent', env: ENV });
const mirrorOf = (objects: K8sObject[]): Container => container(workload(objects).spec.template, 'regmirror');
const hash = (password: string) => `$2y$${bcrypt.hashSync(password, 4).slice(4)}`;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

t.test('auth, access and audit values render the server\'s sections under their config names', { skip: tools.skip }, async (t) => {
  const lint = await helm(['lint', '--strict', CHART, '-f', valuesFile(VALUES)]);
  t.equal(lint.code, 0, lint.stdout + lint.stderr);
  const objects = await render(VALUES);
  const raw = mirrorConfig(objects);
  t.same(raw['auth'], {
    htpasswd: '/etc/regmirror-htpasswd/htpasswd',
    groups: { platform: ['alice', 'bob'] },
    realm: 'https://mirror.example.internal/v2/token',
    signingKey: '/etc/regmirror-signing-key/key.pem',
    tokenTTL: '10m',
  });
  t.same(raw['access'], { ...VALUES.access, admin: { users: [], groups: ['platform'] } }, 'access.anonymous, rules, admin, metrics and trustedProxies as given');
  t.same(raw['audit'], { path: '/var/log/regmirror/audit.log', maxSize: '100MiB', maxFiles: 5 });

  const config = parse(objects);
  t.equal(config.auth?.htpasswd, '/etc/regmirror-htpasswd/htpasswd');
  t.same([...(config.auth?.groups ?? [])], [['platform', ['alice', 'bob']]]);
  t.equal(config.auth?.signingKey, '/etc/regmirror-signing-key/key.pem');
  t.equal(config.auth?.tokenTTLms, 600_000);
  t.match(config.access, { anonymous: [{ upstream: 'docker.io', repository: '**' }], rules: [{ groups: ['platform'], tokens: ['ci'] }], metrics: 'admin', trustedProxies: ['10.0.0.0/8'] });
  t.equal(config.upstreams.get('ghcr.io')?.private, true, 'upstreams.<name>.private passes through');
  t.equal(config.audit?.path, '/var/log/regmirror/audit.log');

  const pod = workload(objects).spec.template;
  const mirror = mirrorOf(objects);
  t.same(
    pod.spec.volumes.filter((v) => ['htpasswd', 'signing-key', 'audit'].includes(v.name)),
    [
      { name: 'htpasswd', secret: { secretName: 'regmirror-users' } },
      { name: 'signing-key', secret: { secretName: 'regmirror-signing-key' } },
      { name: 'audit', emptyDir: { sizeLimit: '1Gi' } },
    ],
  );
  t.same(
    mirror.volumeMounts?.filter((v) => ['htpasswd', 'signing-key', 'audit'].includes(v.name)),
    [
      { name: 'htpasswd', mountPath: '/etc/regmirror-htpasswd', readOnly: true },
      { name: 'signing-key', mountPath: '/etc/regmirror-signing-key', readOnly: true },
      { name: 'audit', mountPath: '/var/log/regmirror' },
    ],
    'whole directories, no subPath: an edited Secret reaches the pod',
  );
  t.same(Object.keys(pod.metadata.annotations), ['checksum/config'], 'a rotated htpasswd Secret does not roll the pods: the mirror re-reads it');
  for (const probe of [mirror.livenessProbe, mirror.readinessProbe, mirror.startupProbe]) {
    t.same(Object.keys(probe?.httpGet ?? {}).sort(), ['path', 'port'], 'probes send no credentials');
  }

  const endpoint = (one(objects, 'ServiceMonitor').spec as { endpoints: Record<string, unknown>[] }).endpoints[0];
  t.same(endpoint?.['basicAuth'], { username: { name: 'prometheus-login', key: 'username' }, password: { name: 'prometheus-login', key: 'password' } });

  const off = await render({});
  t.notOk(['auth', 'access', 'audit'].some((k) => k in mirrorConfig(off)), 'nothing of it by default: anonymous read as before');
  t.notOk(workload(off).spec.template.spec.volumes.some((v) => ['htpasswd', 'signing-key', 'audit'].includes(v.name)));
});

t.test('optional parts left out; what works without auth', { skip: tools.skip }, async (t) => {
  const bare = await render({ auth: { enabled: true } });
  t.same(mirrorConfig(bare)['auth'], { tokenTTL: '5m' }, 'no htpasswd (robot tokens only), a key generated into the one replica\'s volume');
  t.same(mirrorConfig(bare)['access'], { anonymous: [], rules: [], admin: { users: [], groups: [] }, metrics: 'anonymous', trustedProxies: [] });
  t.notOk(workload(bare).spec.template.spec.volumes.some((v) => v.name === 'htpasswd' || v.name === 'signing-key'));

  const proxies = mirrorConfig(await render({ access: { trustedProxies: ['10.0.0.0/8'] }, audit: { enabled: true } }));
  t.same([proxies['access'], proxies['audit']], [{ trustedProxies: ['10.0.0.0/8'] }, { path: 'stdout', maxSize: '100MiB', maxFiles: 5 }], 'the audit log and its proxies without auth');
  t.equal(parseConfig(proxies, { baseDir: '/', env: {} }).audit?.path, 'stdout');

  const onCache = await render({ audit: { enabled: true, path: '/var/lib/regmirror/audit/audit.log' } });
  t.equal(parseConfig(mirrorConfig(onCache), { baseDir: '/', env: {} }).audit?.path, '/var/lib/regmirror/audit/audit.log');
  t.notOk(workload(onCache).spec.template.spec.volumes.some((v) => v.name === 'audit'), 'a file on the cache volume needs no volume of its own');

  // A DaemonSet reached only on each node (hostPort, an internal-traffic-local Service) may keep a key per node.
  const daemons = await render({ mode: 'daemonset', hostPort: { enabled: true }, auth: { enabled: true } });
  t.equal(workload(daemons).kind, 'DaemonSet');
});

t.test('trust values that cannot work fail with a message naming what to set', { skip: tools.skip }, async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['replicas without a shared key', { replicaCount: 3, auth: { enabled: true } }, /auth\.signingKey\.existingSecret: 3 replicas each generate their own key into their own volume, so a token one issued fails on the others/],
    ['a DaemonSet behind an Ingress without a shared key', { mode: 'daemonset', ingress: { enabled: true }, auth: { enabled: true } }, /auth\.signingKey\.existingSecret: the mirror on each node generates its own key, and the Ingress sends a client to any of them/],
    ['a DaemonSet behind a NodePort without a shared key', { mode: 'daemonset', service: { type: 'NodePort' }, auth: { enabled: true } }, /the NodePort Service sends a client to any of them/],
    ['a policy without auth', { access: { anonymous: ['docker.io/**'], metrics: 'admin' } }, /access\.anonymous, access\.metrics: set, but auth\.enabled is false/],
    ['users without auth', { auth: { htpasswd: { existingSecret: 'users' } } }, /auth\.htpasswd: set, but auth\.enabled is false/],
    ['a private upstream without auth', { config: { upstreams: { 'ghcr.io': { url: 'https://ghcr.io', private: true } } } }, /config\.upstreams\.ghcr\.io\.private: needs auth\.enabled: true/],
    ['a pattern of no upstream', { auth: { enabled: true }, access: { anonymous: ['dockerio/**'] } }, /access\.anonymous\[0\]: "dockerio\/\*\*" must start with one of config\.upstreams \(docker\.io\)/],
    ['a rule pattern of no upstream', { auth: { enabled: true }, access: { rules: [{ repositories: ['docker.io/a', 'quay.io/b'], users: ['u'] }] } }, /access\.rules\[0\]\.repositories\[1\]: "quay\.io\/b" must start/],
    ['a rule naming nobody', { auth: { enabled: true }, access: { rules: [{ repositories: ['docker.io/a'] }] } }, /access\.rules\[0\]: must name users, groups or tokens/],
    ['admin metrics, a ServiceMonitor without a login', { auth: { enabled: true }, access: { metrics: 'admin' }, serviceMonitor: { enabled: true } }, /serviceMonitor\.basicAuth\.secretName: access\.metrics is admin/],
    ['an audit file on the read-only root', { audit: { enabled: true, path: '/var/log/audit.log' } }, /audit\.path: \/var\/log\/audit\.log is on no volume that can hold it/],
    ['an audit volume over /tmp', { audit: { enabled: true, path: '/tmp/audit.log', volume: { emptyDir: {} } } }, /audit\.path: audit\.volume would be mounted at \/tmp, which the chart already uses/],
    ['an audit volume on the cache volume', { audit: { enabled: true, path: '/var/lib/regmirror/a.log', volume: { emptyDir: {} } } }, /audit\.volume: \/var\/lib\/regmirror\/a\.log is already on a mounted volume/],
    ['config.auth', { config: { auth: { htpasswd: '/x' } } }, /config\.auth: set by the chart from the top-level auth\.\* values/],
    ['config.access', { config: { access: { anonymous: [] } } }, /config\.access: set by the chart/],
    ['config.audit', { config: { audit: { path: 'stdout' } } }, /config\.audit: set by the chart/],
    ['an unknown metrics policy', { auth: { enabled: true }, access: { metrics: 'everyone' } }, /at '\/access\/metrics': value must be one of 'anonymous', 'admin'/],
    ['a relative audit path', { audit: { enabled: true, path: 'audit.log' } }, /at '\/audit\/path'/],
    ['a token lifetime without a unit', { auth: { enabled: true, tokenTTL: '300' } }, /at '\/auth\/tokenTTL'/],
    ['an action a mirror cannot grant', { auth: { enabled: true }, access: { rules: [{ repositories: ['docker.io/a'], users: ['u'], actions: ['push'] }] } }, /at '\/access\/rules\/0\/actions\/0'/],
    ['private as a string', { config: { upstreams: { 'docker.io': { private: 'yes' } } } }, /at '\/config\/upstreams\/docker.io\/private': got string, want boolean/],
    ['a misspelt key', { auth: { enabled: true, htpasswd: { secret: 'x' } } }, /at '\/auth\/htpasswd': additional properties 'secret' not allowed/],
  ];
  for (const [what, values, message] of cases) {
    const r = await helm(['template', 'rm', CHART, '-f', valuesFile(values)]);
    t.not(r.code, 0, `${what}: fails`);
    t.match(r.stderr, message, what);
  }
});

t.test('the README\'s example values file installs, and the server accepts what it renders', { skip: tools.skip }, async (t) => {
  const readme = readFileSync(path.join(CHART, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### The Helm chart'));
  const example = /```yaml\n(# my-values\.yaml\n[\s\S]*?)```/.exec(section)?.[1];
  if (example === undefined) throw new Error('README: no my-values.yaml example under "The Helm chart"');
  const file = valuesFile('');
  writeFileSync(file, example);
  const lint = await helm(['lint', '--strict', CHART, '-f', file]);
  t.equal(lint.code, 0, lint.stdout + lint.stderr);
  const r = await helm(['template', 'rm', CHART, '--namespace', 'mirrors', '-f', file]);
  t.equal(r.code, 0, r.stderr);
  const config = parse(parseManifests(r.stdout));
  t.equal(config.auth?.signingKey, '/etc/regmirror-signing-key/key.pem');
  t.equal(config.upstreams.get('ghcr.io')?.private, true);
});

t.test('NOTES tell how to log in', { skip: tools.skip }, async (t) => {
  const r = await helm(['install', 'rm', CHART, '--dry-run=client', '--namespace', 'mirrors', '-f', valuesFile(VALUES)]);
  t.equal(r.code, 0, r.stderr);
  const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
  t.match(notes, 'logs in\nthrough the token service (https://mirror.example.internal/v2/token)');
  t.match(notes, 'Anonymous may read: docker.io/**.');
  t.match(notes, 'Log in as a user of the htpasswd file in Secret regmirror-users (key htpasswd;');
  t.match(notes, 'kubectl -n mirrors exec sts/rm-regmirror -- regmirror token create --name ci');
  t.match(notes, 'docker login CLUSTER_IP:5000');
  t.match(notes, 'Robot tokens live in each pod\'s own volume');

  const bare = await helm(['install', 'rm', CHART, '--dry-run=client', '--namespace', 'mirrors', '-f', valuesFile({ auth: { enabled: true } })]);
  const bareNotes = bare.stdout.slice(bare.stdout.indexOf('NOTES:'));
  t.match(bareNotes, 'through the token service (http://CLUSTER_IP:5000/v2/token)');
  t.match(bareNotes, 'Anonymous may read: nothing.');
  t.match(bareNotes, 'Log in with a robot token as the password');
  t.notMatch(bareNotes, 'Robot tokens live in each pod');

  const off = await helm(['install', 'rm', CHART, '--dry-run=client', '--namespace', 'mirrors']);
  t.notMatch(off.stdout, 'Log in', 'no login without auth');
});

t.test('the rendered sections run: two replicas with the chart\'s Secrets as the kubelet mounts them', { skip: tools.skip || openssl.skip }, async (t) => {
  const objects = await render(VALUES);
  const raw = mirrorConfig(objects);
  // The key the chart's error message tells operators to make.
  const pem = execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], { encoding: 'utf8' });
  const users = secretVolume(t, { htpasswd: `alice:${hash('alice-pw')}\n` });
  const key = secretVolume(t, { 'key.pem': pem });
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'rm-audit-'));
  t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
  // The pod's paths, pointed at this machine's stand-ins for its volumes.
  const mounts: [string, string][] = [['/etc/regmirror-htpasswd', users.dir], ['/etc/regmirror-signing-key', key.dir], ['/var/log/regmirror', logDir]];
  const sections = JSON.parse(JSON.stringify({ auth: raw['auth'], access: raw['access'], audit: raw['audit'] }), (_k, v: unknown) => {
    if (typeof v !== 'string') return v;
    const mount = mounts.find(([from]) => v.startsWith(`${from}/`));
    return mount === undefined ? v : mount[1] + v.slice(mount[0].length);
  }) as Record<string, unknown>;

  const hub = await startTestRegistry(t);
  const ghcr = await startTestRegistry(t);
  hub.pushImage('library/alpine', '3', quickImage('chart-alpine'));
  ghcr.pushImage('acme/app', '1', quickImage('chart-app'));
  const upstreams = { 'docker.io': { url: hub.url, library: true }, 'ghcr.io': { url: ghcr.url, private: true } };
  const [a, b] = [await startMirror(t, { upstreams, sections }), await startMirror(t, { upstreams, sections })];
  const get = (url: string, authorization?: string): Promise<RawResponse> =>
    request(url, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json', ...(authorization === undefined ? {} : { authorization }) } });

  const mirror = mirrorOf(objects);
  for (const probe of [mirror.livenessProbe, mirror.readinessProbe, mirror.startupProbe]) {
    t.equal((await get(`${a.url}${probe?.httpGet?.path}`)).status, 200, `${probe?.httpGet?.path} answers the kubelet without credentials`);
  }
  t.equal((await get(`${a.url}/v2/library/alpine/manifests/3`)).status, 200, 'access.anonymous: docker.io/** without credentials');
  const refused = await get(`${a.url}/v2/ghcr.io/acme/app/manifests/1`);
  t.equal(refused.status, 401, 'a private upstream asks for a login');
  t.match(refused.headers['www-authenticate'], /^Bearer realm="https:\/\/mirror\.example\.internal\/v2\/token",service="regmirror",scope="repository:ghcr\.io\/acme\/app:pull"/, 'the challenge names auth.realm');

  const issued = await get(`${a.url}/v2/token?service=regmirror&scope=repository:ghcr.io/acme/app:pull`, basic('alice', 'alice-pw'));
  t.equal(issued.status, 200, 'alice (group platform) logs in with the htpasswd Secret');
  const { token } = JSON.parse(issued.body.toString()) as { token: string };
  t.equal((await get(`${b.url}/v2/ghcr.io/acme/app/manifests/1`, `Bearer ${token}`)).status, 200, 'the other replica accepts the token: one signing key for both');

  t.equal((await get(`${a.url}/metrics`)).status, 401, 'access.metrics: admin');
  t.equal((await get(`${a.url}/metrics`, basic('alice', 'alice-pw'))).status, 200, 'the ServiceMonitor\'s basicAuth, an access.admin user, scrapes');

  users.update({ htpasswd: `bob:${hash('bob-pw')}\n` });
  const tokenFor = (user: string, password: string) => get(`${a.url}/v2/token?service=regmirror`, basic(user, password));
  await until('the rotated Secret is read', () => tokenFor('bob', 'bob-pw'), (r) => r.status === 200);
  t.equal((await tokenFor('alice', 'alice-pw')).status, 401, 'a user removed from the Secret is refused, with no restart');

  await a.close();
  const audit = readFileSync(path.join(logDir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; subject: string });
  t.ok(audit.some((l) => l.action === 'token_issued' && l.subject === 'alice'), 'the audit log is written to the audit volume');
});
