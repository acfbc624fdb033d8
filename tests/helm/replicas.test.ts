import t from 'tap';
import { container, helm, helmMissing, mirrorConfig, one, render, valuesFile, workload, CHART, type K8sObject } from '../fixtures/helm.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);

// replicaCount > 1: the replicas act as one mirror (cluster.dns over the headless Service, a shared
// secret, their pod IP), on a shared Redis the chart insists on; one replica renders none of it.

const REDIS = { url: 'redis://redis.mirrors.svc:6379', namespace: 'mirror-a' };

interface EnvVar {
  readonly name: string;
  readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string }; readonly secretKeyRef?: { readonly name: string; readonly key: string } };
}
interface Affinity {
  readonly podAntiAffinity?: {
    readonly preferredDuringSchedulingIgnoredDuringExecution?: { readonly weight: number; readonly podAffinityTerm: { readonly topologyKey: string; readonly labelSelector: { readonly matchLabels: Record<string, string> } } }[];
    readonly requiredDuringSchedulingIgnoredDuringExecution?: { readonly topologyKey: string }[];
  };
}
const envOf = (objects: K8sObject[]) => (container(workload(objects).spec.template, 'regmirror').env ?? []) as EnvVar[];
const affinityOf = (objects: K8sObject[]) => (workload(objects).spec.template.spec as { affinity?: Affinity }).affinity;

t.test('replicaCount 3 with redis.url: the cluster config, its Secret, pod IP, anti-affinity and a PDB', { skip: tools.skip }, async (t) => {
  const lint = await helm(['lint', '--strict', CHART, '-f', valuesFile({ replicaCount: 3, redis: REDIS })]);
  t.equal(lint.code, 0, lint.stdout + lint.stderr);
  const objects = await render({ replicaCount: 3, redis: REDIS });
  const w = workload(objects);
  t.equal(w.spec.replicas, 3);
  const config = mirrorConfig(objects);
  t.same(config['cluster'], { dns: 'rm-regmirror-headless.mirrors.svc.cluster.local:5000', secretEnv: 'REGMIRROR_CLUSTER_SECRET', probeInterval: '3s' }, 'cluster.dns names the headless Service and the pod port');
  t.match(config['storage'], { metadata: REDIS.url, metadataNamespace: 'mirror-a', path: '/var/lib/regmirror' }, 'redis.url is storage.metadata');

  const headless = one(objects, 'Service', 'rm-regmirror-headless').spec as { clusterIP: string; selector: Record<string, string>; ports: { port: number }[] };
  t.equal(headless.clusterIP, 'None', 'a headless Service: its DNS name lists the ready pods');
  t.same(headless.selector, w.spec.selector.matchLabels);

  const secret = one(objects, 'Secret', 'rm-regmirror-cluster');
  const value = Buffer.from(secret.data?.['secret'] ?? '', 'base64').toString();
  t.match(value, /^[A-Za-z0-9]{48}$/, 'a random secret, longer than the server asks');
  t.equal(secret.metadata.annotations?.['helm.sh/resource-policy'], 'keep', 'kept when the release goes, like the value kept on upgrade');
  const again = one(await render({ replicaCount: 3, redis: REDIS }), 'Secret', 'rm-regmirror-cluster');
  t.not(again.data?.['secret'], secret.data?.['secret'], 'each fresh render draws its own (an upgrade reuses the live one through lookup)');

  const env = envOf(objects);
  t.same(env.find((e) => e.name === 'POD_IP')?.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } }, 'cluster.self comes from the pod IP');
  t.same(env.find((e) => e.name === 'REGMIRROR_CLUSTER_SECRET')?.valueFrom, { secretKeyRef: { name: 'rm-regmirror-cluster', key: 'secret' } });

  const preferred = affinityOf(objects)?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
  t.match(preferred, [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: w.spec.selector.matchLabels } } }], 'replicas prefer different nodes');
  t.match(one(objects, 'PodDisruptionBudget').spec, { maxUnavailable: 1, selector: { matchLabels: w.spec.selector.matchLabels } }, 'a PDB: one replica down at a time');
});

t.test('cluster options: an existing Secret, required anti-affinity, and extraEnv beside the cluster env', { skip: tools.skip }, async (t) => {
  const objects = await render({
    replicaCount: 2,
    redis: { url: REDIS.url },
    cluster: { existingSecret: 'mirror-peers', secretKey: 'token', podAntiAffinity: 'required', probeInterval: '5s' },
    extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ca/ca.crt' }],
  });
  t.equal(objects.filter((o) => o.kind === 'Secret').length, 0, 'no Secret rendered: the existing one is used');
  t.same(envOf(objects).find((e) => e.name === 'REGMIRROR_CLUSTER_SECRET')?.valueFrom, { secretKeyRef: { name: 'mirror-peers', key: 'token' } });
  t.ok(envOf(objects).some((e) => e.name === 'NODE_EXTRA_CA_CERTS'), 'extraEnv kept');
  t.match(affinityOf(objects)?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution, [{ topologyKey: 'kubernetes.io/hostname' }]);
  t.match(mirrorConfig(objects)['cluster'], { probeInterval: '5s' });
  t.notOk(mirrorConfig(objects)['storage'] && (mirrorConfig(objects)['storage'] as Record<string, unknown>)['metadataNamespace'], 'no namespace unless given');

  const none = await render({ replicaCount: 2, redis: { url: REDIS.url }, cluster: { podAntiAffinity: 'none' } });
  t.equal(affinityOf(none), undefined, 'podAntiAffinity: none');
  const own = await render({ replicaCount: 2, redis: { url: REDIS.url }, affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } } });
  t.same(Object.keys(affinityOf(own) ?? {}), ['nodeAffinity'], 'an `affinity` value replaces the chart\'s');
  const userRedis = mirrorConfig(await render({ replicaCount: 2, config: { storage: { metadata: REDIS.url } } }));
  t.match(userRedis, { storage: { metadata: REDIS.url }, cluster: { secretEnv: 'REGMIRROR_CLUSTER_SECRET' } }, 'config.storage.metadata serves as well');
});

t.test('replicas without a shared Redis, or Redis given twice: the render fails saying what to set', { skip: tools.skip }, async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['3 replicas, no Redis', { replicaCount: 3 }, /redis\.url: replicaCount is 3, and replicas need a shared Redis for their metadata .*; set redis\.url to redis:\/\/HOST:PORT, or use replicaCount: 1/],
    ['both redis.url and config.storage.metadata', { redis: { url: REDIS.url }, config: { storage: { metadata: REDIS.url } } }, /config\.storage\.metadata: set by the chart from redis\.url; set only one of them/],
    ['not a Redis URL', { redis: { url: 'http://redis:6379' } }, /at '\/redis\/url': 'http:\/\/redis:6379' does not match pattern/],
  ];
  for (const [what, values, message] of cases) {
    const r = await helm(['template', 'rm', CHART, '-f', valuesFile(values)]);
    t.not(r.code, 0, `${what}: fails`);
    t.match(r.stderr, message, what);
  }
});

t.test('one replica: no cluster objects, no cluster config; a DaemonSet is never a cluster', { skip: tools.skip }, async (t) => {
  for (const values of [{}, { replicaCount: 1, redis: { url: REDIS.url } }, { mode: 'daemonset', replicaCount: 3 }]) {
    const objects = await render(values);
    const what = JSON.stringify(values);
    t.equal(objects.filter((o) => o.metadata.name.endsWith('-cluster')).length, 0, `${what}: no cluster Secret`);
    t.equal(mirrorConfig(objects)['cluster'], undefined, `${what}: no cluster section`);
    t.notOk(envOf(objects).some((e) => e.name === 'POD_IP' || e.name === 'REGMIRROR_CLUSTER_SECRET'), `${what}: no cluster env`);
    t.equal(affinityOf(objects), undefined, `${what}: no anti-affinity`);
  }
  t.match(mirrorConfig(await render({ redis: { url: REDIS.url } }))['storage'], { metadata: REDIS.url }, 'one replica may still keep its metadata in Redis');
});
