import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { CHART, container, helm, helmMissing, mirrorConfig, one, render, valuesFile, workload, type Container, type K8sObject } from '../fixtures/helm.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);

// The chart's TLS values: a certificate from an existing Secret or from cert-manager, client CAs,
// HTTPS on containerPort or on a port of its own; probes and named ports follow the scheme.

interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly targetPort: string;
}
interface CertificateSpec {
  readonly secretName: string;
  readonly issuerRef: { name: string; kind: string; group: string };
  readonly dnsNames?: string[];
  readonly ipAddresses?: string[];
  readonly duration?: string;
  readonly renewBefore?: string;
  readonly privateKey: { rotationPolicy: string };
}

const parse = (objects: K8sObject[]) => parseConfig(mirrorConfig(objects), { baseDir: '/nonexistent', env: {} });
const mirrorOf = (objects: K8sObject[]): Container => container(workload(objects).spec.template, 'regmirror');
const servicePorts = (objects: K8sObject[], name: string) => (one(objects, 'Service', name).spec as { ports: ServicePort[] }).ports;
/** Every port a probe, a Service or the Ingress names exists on the container. */
function namedPortsResolve(objects: K8sObject[]): string[] {
  const names = new Set((mirrorOf(objects).ports ?? []).map((p) => p.name));
  const m = mirrorOf(objects);
  const wanted = [
    ...[m.livenessProbe, m.readinessProbe, m.startupProbe].map((p) => String(p?.httpGet?.port)),
    ...objects.filter((o) => o.kind === 'Service').flatMap((s) => (s.spec as { ports: ServicePort[] }).ports.map((p) => p.targetPort)),
  ];
  return wanted.filter((n) => !names.has(n));
}

t.test('tls.existingSecret: containerPort speaks HTTPS with the mounted Secret', { skip: tools.skip }, async (t) => {
  const values = { tls: { existingSecret: 'mirror-cert' }, ingress: { enabled: true } };
  const lint = await helm(['lint', '--strict', CHART, '-f', valuesFile(values)]);
  t.equal(lint.code, 0, lint.stdout + lint.stderr);
  const objects = await render(values);
  const config = parse(objects);
  t.same(config.tls, { cert: '/etc/regmirror-tls/tls.crt', key: '/etc/regmirror-tls/tls.key', clientCA: undefined, listen: undefined }, 'the server accepts the rendered tls section');
  t.equal(config.listen.port, 5000, 'listen itself is HTTPS');

  const pod = workload(objects).spec.template;
  const mirror = mirrorOf(objects);
  t.same(pod.spec.volumes.find((v) => v.name === 'tls'), { name: 'tls', secret: { secretName: 'mirror-cert' } });
  const mount = mirror.volumeMounts?.find((v) => v.name === 'tls') as Record<string, unknown> | undefined;
  t.same(mount, { name: 'tls', mountPath: '/etc/regmirror-tls', readOnly: true }, 'the whole directory, no subPath: Secret updates reach the pod');
  t.notOk(Object.keys(pod.metadata.annotations).some((a) => a.includes('tls')), 'no checksum: a renewal must not roll the pods');

  t.same(mirror.ports?.map((p) => p.name), ['https']);
  for (const probe of [mirror.livenessProbe, mirror.readinessProbe, mirror.startupProbe]) t.match(probe?.httpGet, { port: 'https', scheme: 'HTTPS' });
  t.match(servicePorts(objects, 'rm-regmirror'), [{ name: 'https', port: 5000, targetPort: 'https' }]);
  t.same(namedPortsResolve(objects), [], 'every named port exists');
  t.match(one(objects, 'Ingress').spec, { rules: [{ http: { paths: [{ backend: { service: { port: { name: 'https' } } } }] } }] });
  t.equal(objects.filter((o) => o.kind === 'Certificate').length, 0, 'no Certificate for an existing Secret');

  const testPod = one(objects, 'Pod', 'rm-regmirror-test').spec as { containers: Container[]; volumes: unknown[] };
  t.equal(testPod.containers[0]?.command?.at(-1), 'https://rm-regmirror.mirrors.svc:5000');
  t.same(testPod.containers[0]?.env, [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/regmirror-tls/ca.crt' }]);
  t.same(testPod.volumes, [{ name: 'tls', secret: { secretName: 'mirror-cert', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } }], 'the CA only, never the key');

  const own = mirrorOf(await render({ ...values, livenessProbe: { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTP' } } }));
  t.same(own.livenessProbe?.httpGet, { path: '/healthz', port: 'https', scheme: 'HTTP' }, 'a scheme set in values is kept');
});

t.test('tls.certManager: a Certificate for the Service names, its Secret mounted', { skip: tools.skip }, async (t) => {
  const objects = await render({ tls: { certManager: { enabled: true, issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer' } } } });
  const cert = one(objects, 'Certificate', 'rm-regmirror');
  t.equal(cert.apiVersion, 'cert-manager.io/v1');
  const spec = cert.spec as CertificateSpec;
  t.equal(spec.secretName, 'rm-regmirror-tls');
  t.same(spec.issuerRef, { name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  t.same(spec.dnsNames, ['rm-regmirror', 'rm-regmirror.mirrors', 'rm-regmirror.mirrors.svc', 'rm-regmirror.mirrors.svc.cluster.local']);
  t.equal(spec.privateKey.rotationPolicy, 'Always', 'a new key at every renewal');
  t.same(workload(objects).spec.template.spec.volumes.find((v) => v.name === 'tls'), { name: 'tls', secret: { secretName: 'rm-regmirror-tls' } });

  const custom = one(
    await render({ tls: { certManager: { enabled: true, issuerRef: { name: 'ca' }, dnsNames: ['mirror.example.internal'], ipAddresses: ['127.0.0.1'], duration: '2160h', renewBefore: '360h' } } }),
    'Certificate',
  ).spec as CertificateSpec;
  t.match(custom, { issuerRef: { kind: 'Issuer' }, dnsNames: ['mirror.example.internal'], ipAddresses: ['127.0.0.1'], duration: '2160h', renewBefore: '360h' });
});

t.test('tls.clientCA from a Secret or a ConfigMap', { skip: tools.skip }, async (t) => {
  for (const [source, volume] of [
    [{ secretName: 'clients' }, { secret: { secretName: 'clients' } }],
    [{ configMapName: 'clients', key: 'bundle.pem' }, { configMap: { name: 'clients' } }],
  ] as const) {
    const objects = await render({ tls: { existingSecret: 'mirror-cert', clientCA: source } });
    t.equal(parse(objects).tls?.clientCA, `/etc/regmirror-client-ca/${'key' in source ? source.key : 'ca.crt'}`);
    t.same(workload(objects).spec.template.spec.volumes.find((v) => v.name === 'client-ca'), { name: 'client-ca', ...volume });
    t.same(mirrorOf(objects).volumeMounts?.find((v) => v.name === 'client-ca'), { name: 'client-ca', mountPath: '/etc/regmirror-client-ca', readOnly: true });
  }
});

t.test('tls.port: HTTPS on its own port, containerPort stays plain', { skip: tools.skip }, async (t) => {
  const objects = await render({ mode: 'daemonset', hostPort: { enabled: true, hostIP: '127.0.0.1' }, tls: { existingSecret: 'mirror-cert', port: 5443 } });
  const config = parse(objects);
  t.same([config.listen, config.tls?.listen], [{ host: '0.0.0.0', port: 5000 }, { host: '0.0.0.0', port: 5443 }]);
  const mirror = mirrorOf(objects);
  t.match(mirror.ports, [{ name: 'http', containerPort: 5000, hostPort: 5000, hostIP: '127.0.0.1' }, { name: 'https', containerPort: 5443 }]);
  t.match(mirror.livenessProbe?.httpGet, { port: 'http' });
  t.equal(mirror.livenessProbe?.httpGet && 'scheme' in mirror.livenessProbe.httpGet, false, 'probes stay on plain HTTP');
  t.match(servicePorts(objects, 'rm-regmirror'), [{ name: 'http', port: 5000 }, { name: 'https', port: 5443, targetPort: 'https' }]);
  t.same(namedPortsResolve(objects), []);

  const r = await helm(['install', 'rm', CHART, '--dry-run=client', '--namespace', 'mirrors', '-f', valuesFile({ mode: 'daemonset', hostPort: { enabled: true, hostIP: '127.0.0.1' }, tls: { existingSecret: 'c' } })]);
  const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
  t.match(notes, '[host."https://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/containerd/certs.d/docker.io/regmirror-ca.crt"\n', 'NOTES: hosts.toml with the CA');
  t.match(notes, '"registry-mirrors": ["https://127.0.0.1:5000"]');
  t.match(notes, '/etc/docker/certs.d/127.0.0.1:5000/ca.crt');
});

t.test('TLS values that cannot work fail with a message naming what to set', { skip: tools.skip }, async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['both sources', { tls: { existingSecret: 'a', certManager: { enabled: true, issuerRef: { name: 'ca' } } } }, /tls: set either tls\.existingSecret or tls\.certManager\.enabled, not both/],
    ['no issuer', { tls: { certManager: { enabled: true } } }, /tls\.certManager\.issuerRef\.name: the Issuer or ClusterIssuer/],
    ['a client CA without a certificate', { tls: { clientCA: { secretName: 'clients' } } }, /tls\.clientCA and tls\.port need a certificate/],
    ['both client CA sources', { tls: { existingSecret: 'a', clientCA: { secretName: 'x', configMapName: 'y' } } }, /tls\.clientCA: set either secretName or configMapName/],
    ['tls.port on containerPort', { tls: { existingSecret: 'a', port: 5000 } }, /tls\.port: 5000 is already containerPort or metrics\.port/],
    ['config.tls', { config: { tls: { cert: '/x', key: '/y' } } }, /config\.tls: set by the chart from tls\.existingSecret or tls\.certManager/],
    ['an unknown issuer kind', { tls: { certManager: { enabled: true, issuerRef: { name: 'ca', kind: 'Vault' } } } }, /at '\/tls\/certManager\/issuerRef\/kind'/],
    ['a misspelt key', { tls: { existingSecrets: 'a' } }, /at '\/tls': additional properties 'existingSecrets' not allowed/],
  ];
  for (const [what, values, message] of cases) {
    const r = await helm(['template', 'rm', CHART, '-f', valuesFile(values)]);
    t.not(r.code, 0, `${what}: fails`);
    t.match(r.stderr, message, what);
  }
});
