import t, { type Test } from 'tap';
import { conformanceScript, runPullConformance, type PullTarget } from '../fixtures/conformance.js';
import { tempDir } from '../fixtures/daemons.js';
import { quickImage } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// The OCI distribution-spec conformance suite's Pull workflow, run against the mirror over content
// that exists upstream only: the mirror must answer every pull spec as a registry would, first by
// fetching upstream (cold) and then from its cache (warm).
const suite = conformanceScript();
const skip = 'missing' in suite ? suite.missing : false;
if (skip && process.env['REGMIRROR_REQUIRE_TOOLS'] === '1') t.fail(`e2e conformance: ${skip}`);

const UPSTREAM = 'registry.test';
const TAG = 'v1';
/**
 * The Pull workflow's specs at distribution-spec v1.1.1 when the content already exists (run-pull.sh
 * sets OCI_TAG_NAME, OCI_MANIFEST_DIGEST and OCI_BLOB_DIGEST, so no setup or teardown spec runs).
 * Counted exactly so that a suite which silently ran fewer specs cannot pass.
 */
const PULL_SPECS = 14;

async function expectAllPass(t: Test, script: string, target: PullTarget, label: string): Promise<void> {
  const run = await runPullConformance(script, target, tempDir(t, 'rm-conformance-'));
  t.comment(`${label}: ${run.summary}`);
  t.equal(run.code, 0, `${label}: the suite exits 0`, { stderr: run.stderr, log: run.code === 0 ? '' : run.log });
  t.equal(run.failed, 0, `${label}: no spec failed`);
  t.equal(run.passed, PULL_SPECS, `${label}: ${String(run.passed)} specs passed`);
}

t.test('the OCI conformance Pull workflow passes against the mirror', { skip }, async (t) => {
  if ('missing' in suite) return;
  t.setTimeout(120_000);
  const registry = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { [UPSTREAM]: { url: registry.url } } });
  const blobsFetched = () => registry.count({ kind: 'blob', method: 'GET', status: 200 });

  // How a client names the same upstream repository: bare (the default upstream) or behind the
  // upstream's name as a path prefix. Each route gets its own image, so each starts with nothing cached.
  for (const [route, namespace] of [
    ['the default upstream', 'conformance/default'],
    ['an upstream path prefix', `${UPSTREAM}/conformance/prefixed`],
  ] as const) {
    await t.test(`through ${route}`, async (t) => {
      const image = quickImage(`conformance ${route}`);
      registry.pushImage(namespace.replace(`${UPSTREAM}/`, ''), TAG, image);
      const target: PullTarget = { url: mirror.url, namespace, tag: TAG, manifestDigest: image.manifestDigest, blobDigest: image.config.digest };
      const before = blobsFetched();
      await expectAllPass(t, suite.script, target, 'cold');
      const fetched = blobsFetched();
      t.ok(fetched > before, 'the cold run fetched the blob upstream');
      await expectAllPass(t, suite.script, target, 'warm');
      t.equal(blobsFetched(), fetched, 'the warm run served the blob from the cache');
    });
  }
});

t.test('the Pull workflow passes against an offline mirror holding what an online one cached', { skip }, async (t) => {
  if ('missing' in suite) return;
  t.setTimeout(120_000);
  const registry = await startTestRegistry(t);
  const storage = tempDir(t, 'rm-conformance-storage-');
  const namespace = 'conformance/offline';
  const image = quickImage('conformance offline');
  registry.pushImage(namespace, TAG, image);
  const target = (url: string): PullTarget => ({ url, namespace, tag: TAG, manifestDigest: image.manifestDigest, blobDigest: image.config.digest });
  const online = await startMirror(t, { upstreams: { [UPSTREAM]: { url: registry.url } }, storage });
  await expectAllPass(t, suite.script, target(online.url), 'online');
  await online.app.settled();
  await online.close();

  const seen = registry.requests.length;
  const offline = await startMirror(t, { upstreams: { [UPSTREAM]: { url: registry.url, offline: true } }, storage });
  await expectAllPass(t, suite.script, target(offline.url), 'offline');
  t.equal(registry.requests.length, seen, 'the offline run asked upstream nothing, the 404 specs included');
});
