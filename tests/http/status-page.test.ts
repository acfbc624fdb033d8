import t from 'tap';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import { chromiumMissing, launchChromium, newPage } from '../fixtures/browser.js';
import type { StatusSnapshot } from '../../src/observability/index.js';

const tools = chromiumMissing();
if (tools.skip && tools.required) t.fail(`status page: ${tools.skip}`);

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

/** The page's formatting, restated independently: a change on either side shows here. */
function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}
const percent = (r: number | null) => (r === null ? '–' : `${(r * 100).toFixed(1)} %`);

t.test('the status page in headless chromium shows what /api/status says', { skip: tools.skip }, async (t) => {
  const reg = await startTestRegistry(t, { rateLimit: { limit: 100, remaining: 60 } });
  const img = quickImage('status-page');
  reg.pushImage('team/app', '1', img);
  reg.pushImage('library/alpine', '3', quickImage('status-page-alpine'));
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  for (const l of img.layers) await request(`${mirror.url}/v2/team/app/blobs/${l.digest}`);
  await mirror.app.settled();
  for (const l of img.layers) await request(`${mirror.url}/v2/team/app/blobs/${l.digest}`);
  mirror.app.metrics.cacheSize(300 * 2 ** 20, 42);
  mirror.app.metrics.syncFinished({ job: 'nightly', result: 'success', bytes: 4096, images: 2 });

  // Every request has been counted once the blob bytes from cache are (the last ones made).
  const layerBytes = img.layers.reduce((n, l) => n + l.size, 0);
  let api = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as StatusSnapshot;
  for (let i = 0; i < 100 && api.traffic.bytesSaved < layerBytes; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    api = JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as StatusSnapshot;
  }
  t.equal(api.traffic.bytesSaved, layerBytes, 'the pulls were counted');

  const browser = await launchChromium(t);
  const { page, errors } = await newPage(browser);
  await page.goto(`${mirror.url}/`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });

  const text = (selector: string) => page.locator(selector).first().textContent();
  const value = (selector: string) => page.locator(selector).first().getAttribute('data-value');

  t.equal(await text('#hit-ratio'), percent(api.traffic.hitRatio));
  t.equal(await value('#hit-ratio'), String(api.traffic.hitRatio));
  t.equal(await text('#bytes-saved'), bytes(api.traffic.bytesSaved));
  t.equal(await value('#bytes-saved'), String(api.traffic.bytesSaved));
  t.equal(await text('#bytes-upstream'), bytes(api.traffic.bytesServed.upstream));
  t.equal(await text('#cache-size'), '300.0 MiB');
  t.equal(await value('#cache-size'), String(api.cache.sizeBytes));
  t.equal(await text('#cache-max'), '1.0 GiB');
  t.equal(await text('#cache-fill'), percent(api.cache.fill));
  t.equal(await text('#cache-blobs'), '42');
  const storage = (api as StatusSnapshot & { storage?: { state: string } }).storage;
  t.equal(storage?.state, 'ok', '/api/status reports the storage state');
  t.equal(await text('#storage-state'), storage?.state);
  t.equal(await page.locator('#cache-meter').evaluate((m) => (m as unknown as { value: number }).value), api.cache.fill);
  for (const kind of ['blob', 'manifest'] as const) {
    for (const outcome of ['hit', 'miss', 'coalesced', 'stale'] as const) {
      t.equal(await text(`#lookups tr[data-kind="${kind}"] td[data-outcome="${outcome}"]`), String(api.traffic.lookups[kind][outcome]), `${kind} ${outcome}`);
    }
  }

  const repoRows = await page.locator('#repos tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.dataset['value'] ?? c.textContent)));
  t.same(
    repoRows,
    api.topRepositories.map((r) => [r.upstream, r.repository, String(r.bytes)]),
    'top repositories, in order, with their bytes',
  );
  t.equal(api.topRepositories[0]?.repository, 'team/app');
  t.equal(api.topRepositories[1]?.repository, 'library/alpine');

  const up = api.upstreams[0]!;
  const upRow = page.locator(`#upstreams tr[data-upstream="${up.name}"] td`);
  t.same(await upRow.allTextContents(), [up.name, up.url, up.state, String(up.lastStatus), String(up.rateLimitRemaining), String(up.requests), String(up.errors), '–']);
  t.equal(up.lastError, null, 'no upstream call failed');
  t.equal(up.rateLimitRemaining, reg.rateLimit?.remaining, 'the budget the upstream advertised');

  const job = api.sync[0]!;
  const jobCells = await page.locator('#sync tr[data-job="nightly"] td').allTextContents();
  t.equal(jobCells[0], 'nightly');
  t.equal(jobCells[1], 'success');
  t.equal(jobCells[4], String(job.images));
  t.equal(jobCells[5], bytes(job.bytes));

  t.same(errors, [], 'no script errors and no CSP violations');
});
