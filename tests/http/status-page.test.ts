import t from 'tap';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { quickImage, randomLayer } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror, type TestMirror } from '../fixtures/mirror.js';
import { parseConfig } from '../../src/config/index.js';
import { request } from '../fixtures/http.js';
import { chromiumMissing, launchChromium, newPage } from '../fixtures/browser.js';
import { until } from '../fixtures/poll.js';
import type { StatusSnapshot } from '../../src/observability/index.js';

const tools = chromiumMissing();
if (tools.skip && tools.required) t.fail(`status page: ${tools.skip}`);

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
/** Where a person can look at the page the test saw (.tap/ is git-ignored test output). */
/** A browser on a loaded machine is slow: wait long, still without timing anything. */
const PATIENT = { timeoutMs: 30_000, tries: 1500 };
const SCREENSHOT = path.resolve(import.meta.dirname, '../../.tap/artefacts/status-page.png');

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
  // The in-flight download below is held for as long as the browser takes: no idle timeout may end it.
  // The reload button loads the start-up config again, with the log level changed.
  const loadConfig = async () => parseConfig({ ...mirror.file, log: { level: 'info' } }, { baseDir: mirror.storage, env: {} });
  const mirror: TestMirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, timeouts: { bodyIdle: '120s' }, loadConfig });
  await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  await request(`${mirror.url}/v2/alpine/manifests/3`, { headers: { accept: ACCEPT } });
  for (const l of [img.config, ...img.layers]) await request(`${mirror.url}/v2/team/app/blobs/${l.digest}`);
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

  // A download held mid-body, so the page has one in flight to show.
  const big = randomLayer(1024 * 1024, 'status-page-inflight');
  const bigDigest = reg.putBlob('team/app', big.gz);
  let release!: () => void;
  reg.inject({ match: { kind: 'blob', method: 'GET' }, type: 'pause-after', bytes: 128 * 1024, release: new Promise<void>((r) => (release = r)), times: 1 });
  t.teardown(() => release());
  const held = request(`${mirror.url}/v2/team/app/blobs/${bigDigest}`);
  const status = async () => JSON.parse((await request(`${mirror.url}/api/status`)).body.toString()) as StatusSnapshot;
  api = await until('the held download is in flight', status, (x) => x.inFlight[0]?.followers === 1 && x.inFlight[0].bytes > 0, PATIENT);

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
  t.equal(await text('#bytes-downloaded'), bytes(api.traffic.bytesDownloaded));
  t.equal(await value('#bytes-downloaded'), String(api.traffic.bytesDownloaded));
  t.equal(await text('#bytes-served'), bytes(api.traffic.bytesServed.cache + api.traffic.bytesServed.upstream));
  t.equal(await text('#bytes-cache'), bytes(api.traffic.bytesServed.cache));
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
  t.same((await upRow.allTextContents()).slice(0, 7), [up.name, up.url, up.state, String(up.lastStatus), String(up.rateLimitRemaining), String(up.requests), String(up.errors)]);
  t.equal(up.lastError, null, 'no upstream call failed');
  t.equal(up.rateLimitRemaining, reg.rateLimit?.remaining, 'the budget the upstream advertised');

  const job = api.sync[0]!;
  const jobCells = await page.locator('#sync tr[data-job="nightly"] td').allTextContents();
  t.equal(jobCells[0], 'nightly');
  t.equal(jobCells[1], 'success');
  t.equal(jobCells[6], String(job.images));
  t.equal(jobCells[7], bytes(job.bytes));
  t.equal(jobCells[9], 'Run now');

  // In flight: the held download, with its progress and its one follower.
  const flying = api.inFlight[0]!;
  const flightCells = page.locator(`#inflight tr[data-digest="${bigDigest}"] td`);
  t.equal(await flightCells.nth(1).textContent(), 'docker.io/team/app');
  t.equal(await flightCells.nth(2).getAttribute('data-value'), String(flying.bytes));
  t.match(await flightCells.nth(2).textContent(), ` / ${bytes(big.size)}`);
  t.equal(await flightCells.nth(4).textContent(), '1', 'one follower');

  // Charts: what each line drew adds up to the history the API reports.
  const drawn = async (series: string) =>
    (await page.locator(`svg path[data-series="${series}"]`).getAttribute('data-values'))!.split(',').filter((v) => v !== '').map(Number);
  const total = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  t.equal(total(await drawn('bytesServed')), total(api.history.series.bytesServed), 'bytes served per minute');
  t.equal(total(await drawn('bytesDownloaded')), total(api.history.series.bytesDownloaded), 'bytes downloaded per minute');
  t.equal(total(await drawn('upstreamErrors')), 0);
  const ratios = await drawn('hitRatio');
  t.ok(ratios.length > 0 && ratios.every((r) => r >= 0 && r <= 1), 'a hit ratio for each minute with lookups');

  // Cached images: both repositories, searchable; team/app has every blob, alpine only its manifest.
  await page.waitForSelector('body[data-images="true"]', { timeout: 15_000 });
  const image = (name: string) => page.locator(`#images tr[data-image="${name}"] td`);
  t.same((await image('docker.io/team/app:1').allTextContents()).slice(0, 3), ['docker.io/team/app', '1', 'linux/amd64']);
  t.equal(await image('docker.io/team/app:1').nth(6).getAttribute('data-complete'), 'true');
  t.equal(await image('docker.io/team/app:1').nth(3).getAttribute('data-value'), String(img.manifest.length + img.config.size + layerBytes));
  t.equal(await image('docker.io/library/alpine:3').nth(6).getAttribute('data-complete'), 'false');
  // Everything is on the page now: a picture for people, before the search narrows the images.
  mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.ok(statSync(SCREENSHOT).size > 10_000, `a screenshot in ${path.relative(process.cwd(), SCREENSHOT)}`);
  await page.fill('#image-search', 'alpine');
  t.same(await page.locator('#images tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-image'))), ['docker.io/library/alpine:3'], 'the search filters');
  t.equal(await text('#image-count'), '1 of 2');

  // /metrics is linked, and the node snippets name this mirror and each upstream.
  const metricsHref = await page.locator('#metrics-link').evaluate((a) => (a as unknown as { href: string }).href);
  t.equal(metricsHref, `${mirror.url}/metrics`);
  t.equal((await request(metricsHref)).status, 200);
  const host = new URL(mirror.url).host;
  t.match(await text('#snippet-docker'), `"registry-mirrors": ["http://${host}"]`);
  t.match(await text('#snippet-containerd'), `# /etc/containerd/certs.d/docker.io/hosts.toml\nserver = "${reg.url}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]`);
  t.match(await text('#snippet-podman'), `prefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${host}"\ninsecure = true`);

  t.same(errors, [], 'no script errors and no CSP violations');

  // Run now: the button POSTs for its entry and shows the answer, whatever it is.
  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url() === `${mirror.url}/api/sync/nightly`);
  // Clicked in the page: the table is rebuilt every 5 s, and a rebuilt row would make a pointer click retry.
  await page.locator('#sync tr[data-job="nightly"] button').evaluate((b) => (b as unknown as { click(): void }).click());
  await posted;
  const answer = page.locator('#sync tr[data-job="nightly"] .answer');
  await until('the answer shows', () => answer.textContent(), (x) => /^\d{3} /.test(x ?? ''), PATIENT);

  // Reload config: the button POSTs, the answer names what applied, the header the reload.
  t.match(await text('#config-state'), /^config loaded [^·]+$/, 'loaded, never reloaded');
  await page.locator('#reload-config').evaluate((b) => (b as unknown as { click(): void }).click());
  t.equal(await until('the reload answer shows', () => text('#reload-answer'), (x) => /^\d{3} /.test(x ?? ''), PATIENT), '200 applied: log.level');
  t.match(await until('the header shows the reload', () => text('#config-state'), (x) => (x ?? '').includes('last reload'), PATIENT), /· last reload .+: applied$/);
  t.equal(mirror.app.logger.level, 'info', 'the reload is in force');

  release();
  t.equal((await held).status, 200);

  // Fields other parts of the server add (an upstream's last error, a sync entry's schedule): the
  // real answer with them filled in, and a cause carrying markup that must stay text.
  const { page: later } = await newPage(browser);
  await later.route('**/api/status', async (route) => {
    const real = JSON.parse((await (await route.fetch()).text()) as string) as Record<string, unknown> & { upstreams: Record<string, unknown>[]; sync: Record<string, unknown>[] };
    real.upstreams[0]!['lastError'] = { at: '2026-01-02T03:04:05.000Z', cause: 'ECONNREFUSED <b id="injected">x</b>' };
    real.upstreams[0]!['endpoints'] = [
      { url: 'http://dmz.invalid:5000', state: 'cooling', until: '2026-01-02T03:04:35.000Z', lastError: { at: '2026-01-02T03:04:05.000Z', cause: 'HTTP 503 from http://dmz.invalid:5000/v2/' } },
      { url: 'https://origin.invalid', state: 'up', until: null, lastError: null },
    ];
    Object.assign(real.sync[0]!, { schedule: '0 3 * * *', nextRunAt: '2026-01-03T03:00:00.000Z', lastOrigin: 'api' });
    Object.assign(real.upstreams[0]!, { proxy: 'http://proxy.invalid:3128', insecureSkipVerify: true });
    real['config'] = {
      loadedAt: '2026-01-02T03:00:00.000Z',
      lastReload: { at: '2026-01-02T03:04:05.000Z', ok: false, error: 'manifestTTL: must be a duration <b id="injected">', restartNeeded: ['listen', 'storage.path'] },
    };
    await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(real) });
  });
  await later.goto(`${mirror.url}/`);
  await later.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
  const lastError = await later.locator(`#upstreams tr[data-upstream="${up.name}"] td`).nth(7).textContent();
  t.match(lastError, /^ECONNREFUSED <b id="injected">x<\/b> \(/, 'the cause, as text, and when');
  t.equal(await later.locator('#injected').count(), 0, 'no markup from the JSON reaches the DOM');
  const route = later.locator(`#upstreams tr[data-upstream="${up.name}"] td`).nth(1);
  t.same(await route.locator('.note').allTextContents(), ['via http://proxy.invalid:3128', 'TLS not verified'], 'how requests to it go, under its url');
  const configState = await later.locator('#config-state').textContent();
  t.match(configState, /· last reload .+: refused: manifestTTL: must be a duration <b id="injected"> · needs a restart: listen, storage.path$/);
  t.equal(await later.locator('#config-state').getAttribute('class'), 'failure');
  const dmz = await later.locator(`#upstreams tr[data-endpoint="${up.name}#1"] td`).allTextContents();
  t.same(dmz.slice(0, 3), ['↳ endpoint 1', 'http://dmz.invalid:5000', 'cooling'], 'each endpoint under its upstream, with its state');
  t.match(dmz[3], /^until /);
  t.match(dmz[7], /^HTTP 503 from http:\/\/dmz.invalid:5000\/v2\/ \(/);
  t.same((await later.locator(`#upstreams tr[data-endpoint="${up.name}#2"] td`).allTextContents()).slice(0, 4), ['↳ endpoint 2', 'https://origin.invalid', 'up', '–']);
  const entry = await later.locator('#sync tr[data-job="nightly"] td').allTextContents();
  t.equal(entry[2], '0 3 * * *');
  t.match(entry[3], /2026/, 'the next run, in the time format of the browser');
  t.equal(entry[5], 'api');
});
