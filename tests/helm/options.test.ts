import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { CHART, container, helm, helmMissing, mirrorConfig, one, render, valuesFile, workload, type K8sObject } from '../fixtures/helm.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);

const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** Every mode and option the chart has, switched on at once. */
const EVERYTHING = {
  mode: 'daemonset',
  image: { registry: 'registry.airgap.internal:5000', repository: 'infra/regmirror', tag: 'ignored-when-pinned', digest: DIGEST },
  config: {
    upstreams: {
      'docker.io': { url: 'https://registry-1.docker.io', username: 'hubuser', passwordEnv: 'HUB_TOKEN' },
      'ghcr.io': { url: 'https://ghcr.io', username: 'bot', passwordEnv: 'GHCR_TOKEN' },
    },
    metrics: { perRepository: 20 },
    shutdownGrace: '20s',
  },
  credentials: { env: { HUB_TOKEN: 'hub-secret' }, existingSecret: 'mirror-ghcr' },
  persistence: { size: '200G', maxSizePercent: 80, hostPath: '/srv/regmirror' },
  service: { type: 'NodePort', nodePort: 30500 },
  hostPort: { enabled: true, port: 5001, hostIP: '127.0.0.1' },
  metrics: { port: 9090 },
  ingress: { enabled: true, className: 'nginx', hosts: [{ host: 'mirror.example.internal', paths: [{ path: '/', pathType: 'Prefix' }] }], tls: [{ hosts: ['mirror.example.internal'], secretName: 'mirror-tls' }] },
  serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
  podDisruptionBudget: { enabled: true, minAvailable: 0, maxUnavailable: null },
  extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/regmirror-ca/ca.crt' }],
  extraVolumes: [{ name: 'ca', configMap: { name: 'internal-ca' } }],
  extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/regmirror-ca', readOnly: true }],
  lifecycle: { preStop: { sleep: { seconds: 5 } } },
};

t.test('helm chart with every option on', { skip: tools.skip }, async (t) => {
  const file = valuesFile(EVERYTHING);
  const lint = await helm(['lint', '--strict', CHART, '-f', file]);
  t.equal(lint.code, 0, lint.stdout + lint.stderr);

  const objects = await render(EVERYTHING);
  const w = workload(objects);
  const pod = w.spec.template;
  const mirror = container(pod, 'regmirror');

  t.test('daemonset mode: a hostPath cache handed to the mirror user by a CHOWN-only init container', async (t) => {
    t.equal(w.kind, 'DaemonSet');
    t.equal(objects.filter((o) => o.kind === 'StatefulSet' || o.metadata.name.endsWith('-headless')).length, 0);
    t.same(pod.spec.volumes.find((v) => v.name === 'cache'), { name: 'cache', hostPath: { path: '/srv/regmirror', type: 'DirectoryOrCreate' } });
    t.match(mirror.volumeMounts, [{ name: 'config' }, { name: 'cache', mountPath: '/var/lib/regmirror' }, { name: 'tmp', mountPath: '/tmp' }]);
    const init = container(pod, 'chown-cache');
    t.equal(init.image, mirror.image, 'no other image to bring into an air-gapped cluster');
    t.same(init.command?.slice(-3), ['/var/lib/regmirror', '10001', '10001']);
    t.match(init.securityContext, { runAsUser: 0, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['CHOWN'] } });
    t.equal(mirror.securityContext?.runAsNonRoot, true, 'the mirror itself stays non-root');
    t.equal((one(objects, 'Service', 'rm-regmirror').spec as { internalTrafficPolicy?: string }).internalTrafficPolicy, 'Local');
  });

  t.test('a private CA through extra volumes and env, a preStop sleep', async (t) => {
    t.match(mirror.volumeMounts?.at(-1), { name: 'ca', mountPath: '/etc/regmirror-ca', readOnly: true });
    t.match(pod.spec.volumes.at(-1), { name: 'ca', configMap: { name: 'internal-ca' } });
    t.same(mirror.env, [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/regmirror-ca/ca.crt' }]);
    t.same(mirror.lifecycle, { preStop: { sleep: { seconds: 5 } } });
  });

  t.test('the image comes from image.registry, pinned by digest', async (t) => {
    t.equal(mirror.image, `registry.airgap.internal:5000/infra/regmirror@${DIGEST}`);
  });

  t.test('NodePort, hostPort and a separate metrics port', async (t) => {
    t.same(mirror.ports, [
      { name: 'http', containerPort: 5000, protocol: 'TCP', hostPort: 5001, hostIP: '127.0.0.1' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ]);
    t.match(one(objects, 'Service', 'rm-regmirror').spec, { type: 'NodePort', ports: [{ name: 'http', port: 5000, nodePort: 30500 }] });
    t.match(one(objects, 'Service', 'rm-regmirror-metrics').spec, { type: 'ClusterIP', ports: [{ name: 'metrics', port: 9090, targetPort: 'metrics' }] });
  });

  t.test('a ServiceMonitor that scrapes the metrics service only', async (t) => {
    const sm = one(objects, 'ServiceMonitor');
    t.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    t.equal(sm.metadata.labels?.['release'], 'prometheus');
    const spec = sm.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[]; namespaceSelector: unknown };
    t.same(spec.endpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
    t.same(spec.namespaceSelector, { matchNames: ['mirrors'] });
    const selected = objects.filter((o) => o.kind === 'Service' && Object.entries(spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v));
    t.same(selected.map((s) => s.metadata.name), ['rm-regmirror-metrics']);
  });

  t.test('an Ingress to the registry port', async (t) => {
    t.match(one(objects, 'Ingress').spec, {
      ingressClassName: 'nginx',
      tls: [{ secretName: 'mirror-tls' }],
      rules: [{ host: 'mirror.example.internal', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'rm-regmirror', port: { name: 'http' } } } }] } }],
    });
  });

  t.test('PodDisruptionBudget with minAvailable', async (t) => {
    t.same(one(objects, 'PodDisruptionBudget').spec, { minAvailable: 0, selector: { matchLabels: w.spec.selector.matchLabels } });
  });

  t.test('credentials: a chart Secret and an existing one as env vars; the server resolves passwordEnv', async (t) => {
    const secret = one(objects, 'Secret', 'rm-regmirror-credentials');
    t.same(secret.data, { HUB_TOKEN: Buffer.from('hub-secret').toString('base64') });
    t.same(mirror.envFrom, [{ secretRef: { name: 'rm-regmirror-credentials' } }, { secretRef: { name: 'mirror-ghcr' } }]);
    const cm = one(objects, 'ConfigMap').data?.['mirror.config.json'] ?? '';
    t.notMatch(cm, 'hub-secret', 'no secret in the ConfigMap');
    // What the kubelet would put in the environment: the chart Secret, plus the existing one's key.
    const env = { HUB_TOKEN: Buffer.from(secret.data?.['HUB_TOKEN'] ?? '', 'base64').toString(), GHCR_TOKEN: 'ghcr-secret' };
    const config = parseConfig(mirrorConfig(objects), { baseDir: '/nonexistent', env });
    t.equal(config.upstreams.get('docker.io')?.password, 'hub-secret');
    t.equal(config.upstreams.get('ghcr.io')?.password, 'ghcr-secret');
    t.equal(config.upstreams.get('ghcr.io')?.username, 'bot');
    t.match(pod.metadata.annotations['checksum/credentials'], /^[0-9a-f]{64}$/);
    const rotated = await render({ ...EVERYTHING, credentials: { ...EVERYTHING.credentials, env: { HUB_TOKEN: 'rotated' } } });
    t.not(workload(rotated).spec.template.metadata.annotations['checksum/credentials'], pod.metadata.annotations['checksum/credentials'], 'a rotated secret rolls the pods');
    t.equal(workload(rotated).spec.template.metadata.annotations['checksum/config'], pod.metadata.annotations['checksum/config']);
  });

  t.test('config: user keys merged over the chart\'s; the server accepts it', async (t) => {
    const raw = mirrorConfig(objects);
    const config = parseConfig(raw, { baseDir: '/nonexistent', env: { HUB_TOKEN: 'x', GHCR_TOKEN: 'y' } });
    t.same(config.metrics, { listen: { host: '0.0.0.0', port: 9090 }, perRepository: 20 }, 'metrics.listen from metrics.port, perRepository from config');
    t.equal(config.shutdownGraceMs, 20_000, 'an explicit shutdownGrace wins');
    t.equal(config.storage.path, '/var/lib/regmirror');
    t.equal((raw['storage'] as Record<string, unknown>)['maxSize'], `${Math.floor((200e9 * 0.8) / 2 ** 20)}MiB`, '80% of 200G');
    t.same([...config.upstreams.keys()].sort(), ['docker.io', 'ghcr.io']);
  });

  t.test('NOTES print containerd hosts.toml and docker daemon.json for the node address', async (t) => {
    const r = await helm(['install', 'rm', CHART, '--dry-run=client', '--namespace', 'mirrors', '-f', file]);
    t.equal(r.code, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    // The same hosts.toml that tests/e2e/containerd.test.ts pulls through.
    for (const [name, url] of [['docker.io', 'https://registry-1.docker.io'], ['ghcr.io', 'https://ghcr.io']]) {
      t.match(notes, `# /etc/containerd/certs.d/${name}/hosts.toml\nserver = "${url}"\n\n[host."http://127.0.0.1:5001"]\n  capabilities = ["pull", "resolve"]\n`);
    }
    const daemonJson = /docker, \/etc\/docker\/daemon.json[^\n]*\n(\{[^}]*\})/.exec(notes)?.[1];
    t.same(JSON.parse(daemonJson ?? 'null'), { 'registry-mirrors': ['http://127.0.0.1:5001'] });
    t.match(notes, 'docker pull 127.0.0.1:5001/ghcr.io/');
  });
});

t.test('helm chart option by option', { skip: tools.skip }, async (t) => {
  const cacheClaim = (objs: K8sObject[]) => workload(objs).spec.volumeClaimTemplates?.[0]?.spec;
  t.equal(cacheClaim(await render({ persistence: { storageClass: '-' } }))?.storageClassName, '', '"-" means no StorageClass');
  t.equal(cacheClaim(await render({ persistence: { storageClass: 'fast' } }))?.storageClassName, 'fast');

  const tagged = container(workload(await render({ image: { tag: '9.9.9' } })).spec.template, 'regmirror');
  t.equal(tagged.image, 'regmirror/regmirror:9.9.9');

  const nochown = workload(await render({ mode: 'daemonset', persistence: { hostPathChown: false } }));
  t.equal(nochown.spec.template.spec.initContainers, undefined, 'no root init container when the directory is prepared');

  const ownMax = parseConfig(mirrorConfig(await render({ config: { storage: { maxSize: '7GiB' } } })), { baseDir: '/', env: {} });
  t.equal(ownMax.storage.maxSize, 7 * 2 ** 30, 'an explicit storage.maxSize wins over the computed one');

  const sizes: [string, string][] = [['1.5Ti', `${Math.floor((1.5 * 2 ** 40 * 0.85) / 2 ** 20)}MiB`], ['10737418240', '8704MiB'], ['500M', '405MiB']];
  for (const [size, expected] of sizes) {
    const raw = mirrorConfig(await render({ persistence: { size } }));
    t.equal((raw['storage'] as Record<string, unknown>)['maxSize'], expected, `85% of ${size}`);
  }

  const ipv6 = parseConfig(mirrorConfig(await render({ listenHost: '::', metrics: { port: 9100 } })), { baseDir: '/', env: {} });
  t.same([ipv6.listen, ipv6.metrics.listen], [{ host: '::', port: 5000 }, { host: '::', port: 9100 }]);

  const removed = mirrorConfig(await render({ config: { upstreams: { 'docker.io': null, 'quay.io': { url: 'https://quay.io' } }, defaultUpstream: 'quay.io' } }));
  t.same(Object.keys(removed['upstreams'] as object), ['quay.io'], 'a null removes a default upstream');

  // Keys this chart does not know (added to the server later) pass through untouched.
  const future = mirrorConfig(await render({ config: { sync: [{ upstream: 'docker.io', repository: 'library/alpine', tags: ['3.*'] }], storage: { pin: ['docker.io/library/*'] } } }));
  t.same(future['sync'], [{ upstream: 'docker.io', repository: 'library/alpine', tags: ['3.*'] }]);
  t.same(future['storage'], { path: '/var/lib/regmirror', maxSize: '43520MiB', pin: ['docker.io/library/*'] });
});
