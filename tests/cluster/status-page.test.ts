import t from 'tap';
import { randomBytes } from 'node:crypto';
import { hashedGet, ownerAmong, startReplicas } from '../fixtures/cluster.js';
import { chromiumMissing, launchChromium, newPage } from '../fixtures/browser.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { request } from '../fixtures/http.js';
import type { StatusSnapshot } from '../../src/observability/index.js';

const tools = chromiumMissing();
if (tools.skip && tools.required) t.fail(`status page: ${tools.skip}`);

t.test('the status page lists the cluster members as /api/status does', { skip: tools.skip }, async (t) => {
  const reg = await startTestRegistry(t);
  const replicas = await startReplicas(t, 3, { upstreams: { 'docker.io': { url: reg.url } } });
  const digest = reg.putBlob('team/app', randomBytes(64 * 1024));
  const asker = replicas.find((r) => r !== ownerAmong(replicas, digest))!;
  t.equal((await hashedGet(`${asker.url}/v2/team/app/blobs/${digest}`)).digest, digest);
  // One member gone and probed: shown as not ready, with why.
  const gone = replicas.find((r) => r !== asker)!;
  await gone.close();
  await asker.app.cluster!.membership.refresh();
  const api = JSON.parse((await request(`${asker.url}/api/status`)).body.toString()) as StatusSnapshot;
  t.equal(api.cluster?.bytesFromPeers, 64 * 1024);

  const browser = await launchChromium(t);
  const { page, errors } = await newPage(browser);
  await page.goto(`${asker.url}/`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
  t.equal(await page.locator('#cluster-section').isVisible(), true);
  for (const m of api.cluster!.members) {
    const cells = await page.locator(`#cluster tr[data-member="${m.url}"] td`).allTextContents();
    t.equal(cells[0], m.url + (m.self ? ' (this replica)' : ''));
    t.equal(cells[1], m.live ? 'live' : 'not ready', `${m.url}: ${cells[1]}`);
    if (!m.live) t.match(cells[3], m.lastError!.cause);
  }
  t.match(await page.locator('#cluster-traffic').textContent(), 'from peers 64.0 KiB');
  t.same(errors, []);
});
