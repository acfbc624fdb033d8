import t from 'tap';
import { CHART, helm, helmMissing, valuesFile } from '../fixtures/helm.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);

/** values → what helm's error must name. */
const SCHEMA_ERRORS: [string, unknown, RegExp][] = [
  ['unknown mode', { mode: 'replicaset' }, /at '\/mode': value must be one of 'statefulset', 'daemonset'/],
  ['a port as a string', { containerPort: '5000' }, /at '\/containerPort': got string, want integer/],
  ['a size that is no quantity', { persistence: { size: 'lots' } }, /at '\/persistence\/size': 'lots' does not match pattern/],
  ['a percentage over 100', { persistence: { maxSizePercent: 120 } }, /at '\/persistence\/maxSizePercent'/],
  ['a tag where the digest goes', { image: { digest: 'latest' } }, /at '\/image\/digest'/],
  ['a misspelt top-level key', { replicas: 2 }, /additional properties 'replicas' not allowed/],
  ['a misspelt nested key', { persistence: { sizee: '10Gi' } }, /at '\/persistence': additional properties 'sizee' not allowed/],
  ['an unknown service type', { service: { type: 'ExternalName' } }, /at '\/service\/type'/],
  ['a node port out of range', { service: { type: 'NodePort', nodePort: 80 } }, /at '\/service\/nodePort'/],
  ['an env var name kubelet would drop', { credentials: { env: { 'my-token': 'x' } } }, /at '\/credentials\/env': additional properties 'my-token' not allowed/],
  ['an upstream URL that is not http(s)', { config: { upstreams: { 'docker.io': { url: 'ftp://registry-1.docker.io' } } } }, /at '\/config\/upstreams\/docker.io\/url'/],
  ['an unknown log level', { config: { log: { level: 'loud' } } }, /at '\/config\/log\/level'/],
  ['a grace period the derived shutdownGrace cannot fit in', { terminationGracePeriodSeconds: 5 }, /at '\/terminationGracePeriodSeconds': minimum: got 5, want 11/],
  ['no upstream left', { config: { upstreams: { 'docker.io': null } } }, /at '\/config\/upstreams': minProperties: got 0, want 1/],
  ['hostPort.enabled as a string', { hostPort: { enabled: 'yes' } }, /at '\/hostPort\/enabled': got string, want boolean/],
];

/** values the schema cannot judge, which the templates refuse with a message naming what to set. */
const TEMPLATE_ERRORS: [string, unknown, RegExp][] = [
  ['config.listen', { config: { listen: '0.0.0.0:6000' } }, /config\.listen: set by the chart from listenHost and containerPort/],
  ['config.storage.path', { config: { storage: { path: '/data' } } }, /config\.storage\.path: set by the chart to persistence\.mountPath/],
  ['config.metrics.listen', { config: { metrics: { listen: '0.0.0.0:9090' } } }, /config\.metrics\.listen: set by the chart from metrics\.port/],
  ['a password in the ConfigMap', { config: { upstreams: { 'ghcr.io': { url: 'https://ghcr.io', username: 'u', password: 'p' } } } }, /config\.upstreams\.ghcr\.io\.password: a password would sit in a ConfigMap/],
  ['a default upstream removed', { config: { upstreams: { 'docker.io': null, 'quay.io': { url: 'https://quay.io' } } } }, /config\.defaultUpstream: "docker\.io" is not one of config\.upstreams \(quay\.io\)/],
  ['a volume too small for 1MiB of cache', { persistence: { size: '1Ki' } }, /persistence\.size: 1Ki × 85% is less than 1MiB/],
];

t.test('bad values fail helm template with one precise message', { skip: tools.skip }, async (t) => {
  for (const [what, values, message] of [...SCHEMA_ERRORS, ...TEMPLATE_ERRORS]) {
    const r = await helm(['template', 'rm', CHART, '-f', valuesFile(values)]);
    t.not(r.code, 0, `${what}: fails`);
    t.match(r.stderr, message, what);
    t.equal(r.stdout, '', `${what}: renders nothing`);
  }
});

t.test('helm lint reports the schema error too', { skip: tools.skip }, async (t) => {
  const r = await helm(['lint', CHART, '-f', valuesFile({ mode: 'replicaset' })]);
  t.not(r.code, 0);
  t.match(r.stdout + r.stderr, /mode/);
});
