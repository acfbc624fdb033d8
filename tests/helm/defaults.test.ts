import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { CHART, container, helm, helmMissing, mirrorConfig, one, render, workload, type K8sObject } from '../fixtures/helm.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);
const ROOT = path.resolve(import.meta.dirname, '../..');

t.test('helm chart with default values', { skip: tools.skip }, async (t) => {
  t.test('helm lint passes', async (t) => {
    const r = await helm(['lint', '--strict', CHART]);
    t.equal(r.code, 0, r.stdout + r.stderr);
    t.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  const objects = await render();
  const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  t.same(
    kinds,
    ['ConfigMap/rm-regmirror', 'Pod/rm-regmirror-test', 'PodDisruptionBudget/rm-regmirror', 'Service/rm-regmirror', 'Service/rm-regmirror-headless', 'ServiceAccount/rm-regmirror', 'StatefulSet/rm-regmirror'],
    'no DaemonSet, Secret, Ingress or ServiceMonitor by default; the Pod is the `helm test` hook',
  );

  const w = workload(objects);
  const pod = w.spec.template;
  const mirror = container(pod, 'regmirror');

  t.test('a StatefulSet with a PVC for the cache', async (t) => {
    t.equal(w.kind, 'StatefulSet');
    t.equal(w.spec.replicas, 1);
    t.same(w.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'regmirror', 'app.kubernetes.io/instance': 'rm' });
    t.match(pod.metadata.labels, w.spec.selector.matchLabels, 'the pods carry the selector labels');
    const claim = w.spec.volumeClaimTemplates?.[0];
    t.equal(claim?.metadata.name, 'cache');
    t.same(claim?.spec.accessModes, ['ReadWriteOnce']);
    t.equal(claim?.spec.resources.requests.storage, '50Gi');
    t.equal(claim?.spec.storageClassName, undefined, 'the cluster default StorageClass');
  });

  t.test('the image and the command are the Dockerfile\'s', async (t) => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    t.equal(mirror.image, `regmirror/regmirror:${version}`, 'the chart appVersion follows package.json');
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? 'null') as string[];
    const workdir = [...dockerfile.matchAll(/^WORKDIR (\S+)$/gm)].at(-1)?.[1];
    t.same(mirror.command, [cmd[0], path.posix.resolve(workdir ?? '/', cmd[1] ?? ''), ...cmd.slice(2)]);
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
    t.equal(pod.spec.securityContext.runAsUser, Number(user?.[1]), 'runAsUser is the image user');
    t.equal(pod.spec.securityContext.runAsGroup, Number(user?.[2]));
  });

  t.test('hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no API token', async (t) => {
    t.match(pod.spec.securityContext, { runAsNonRoot: true, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    t.same(mirror.securityContext, {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    t.equal(pod.spec.automountServiceAccountToken, false);
    t.equal(pod.spec.initContainers, undefined, 'no root init container in statefulset mode');
    t.ok((pod.spec.terminationGracePeriodSeconds ?? 0) > 30, 'longer than the server\'s default shutdownGrace of 30s');
  });

  t.test('probes on /healthz and /readyz of the registry port', async (t) => {
    t.same(mirror.ports, [{ name: 'http', containerPort: 5000, protocol: 'TCP' }]);
    t.same(mirror.livenessProbe?.httpGet, { path: '/healthz', port: 'http' });
    t.same(mirror.readinessProbe?.httpGet, { path: '/readyz', port: 'http' });
    t.same(mirror.startupProbe?.httpGet, { path: '/healthz', port: 'http' });
  });

  t.test('volumes: the config read-only, the cache, a writable /tmp', async (t) => {
    t.same(mirror.volumeMounts, [
      { name: 'config', mountPath: '/etc/regmirror', readOnly: true },
      { name: 'cache', mountPath: '/var/lib/regmirror' },
      { name: 'tmp', mountPath: '/tmp' },
    ]);
    t.same(pod.spec.volumes, [
      { name: 'config', configMap: { name: 'rm-regmirror' } },
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
    ]);
  });

  t.test('mirror.config.json is accepted by the server\'s own config loader', async (t) => {
    const raw = mirrorConfig(objects);
    const config = parseConfig(raw, { baseDir: '/nonexistent', env: {} });
    t.same(config.listen, { host: '0.0.0.0', port: 5000 });
    t.equal(config.storage.path, '/var/lib/regmirror', 'the cache is the volume mount');
    t.equal(raw['storage'] && (raw['storage'] as Record<string, unknown>)['maxSize'], '43520MiB');
    t.equal(config.storage.maxSize, Math.floor((50 * 2 ** 30 * 0.85) / 2 ** 20) * 2 ** 20, '85% of 50Gi in whole MiB');
    t.same([...config.upstreams.keys()], ['docker.io']);
    t.equal(config.defaultUpstream, 'docker.io');
    t.equal(config.metrics.listen, undefined, 'metrics on the registry port');
    t.equal(config.shutdownGraceMs, ((pod.spec.terminationGracePeriodSeconds ?? 0) - 10) * 1000, 'transfers finish before the kubelet kills the pod');
  });

  t.test('services: ClusterIP and the StatefulSet\'s headless one', async (t) => {
    const svc = one(objects, 'Service', 'rm-regmirror').spec as { type: string; ports: unknown[]; selector: Record<string, string> };
    t.equal(svc.type, 'ClusterIP');
    t.same(svc.ports, [{ name: 'http', port: 5000, targetPort: 'http', protocol: 'TCP' }]);
    t.same(svc.selector, w.spec.selector.matchLabels);
    const headless = one(objects, 'Service', 'rm-regmirror-headless').spec as { clusterIP: string };
    t.equal(headless.clusterIP, 'None');
    t.equal((one(objects, 'StatefulSet').spec as { serviceName: string }).serviceName, 'rm-regmirror-headless');
  });

  t.test('a PodDisruptionBudget that still lets a single replica be drained', async (t) => {
    t.match(one(objects, 'PodDisruptionBudget').spec, { maxUnavailable: 1, selector: { matchLabels: w.spec.selector.matchLabels } });
  });

  t.test('the checksum annotation follows the config, and only the config', async (t) => {
    const checksum = (objs: K8sObject[]) => workload(objs).spec.template.metadata.annotations['checksum/config'];
    const before = checksum(objects);
    t.match(before, /^[0-9a-f]{64}$/);
    const redis = { url: 'redis://redis.mirrors.svc:6379' };
    t.equal(checksum(await render({ replicaCount: 3, redis })), checksum(await render({ replicaCount: 2, redis })), 'scaling out does not restart the pods');
    t.not(checksum(await render({ config: { manifestTTL: '1h' } })), before, 'a config key');
    t.not(checksum(await render({ persistence: { size: '60Gi' } })), before, 'a bigger volume changes storage.maxSize');
  });
});
