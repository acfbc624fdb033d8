import { createHash } from 'node:crypto';
import { STATUS_PAGE_CHARTS } from './status-page-charts.js';
import { STATUS_PAGE_EXTRAS } from './status-page-extras.js';
import { STATUS_PAGE_SCRIPT, STATUS_PAGE_START } from './status-page-script.js';
import { STATUS_PAGE_STYLE } from './status-page-style.js';

/**
 * The status page: one static HTML document whose script polls /api/status. No framework and no
 * build step; the script is the parts below in one <script>, whose hash is the only one the CSP allows.
 */
const SCRIPT = STATUS_PAGE_SCRIPT + STATUS_PAGE_CHARTS + STATUS_PAGE_EXTRAS + STATUS_PAGE_START;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

const table = (id: string, headers: readonly string[]) => `<table><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody id="${id}"></tbody></table>`;
const card = (label: string, id: string) => `<div class="card">${label} <b id="${id}">–</b></div>`;
const chart = (title: string, id: string, legend: readonly string[]) =>
  `<div class="chart">${title}<svg id="${id}" role="img" aria-label="${title}"></svg><div class="legend">${legend.map((l, i) => `<span class="s${i}">— ${l}</span>`).join('')}</div></div>`;

const BODY = `
<h1>regmirror <span id="version" class="muted"></span></h1>
<div class="muted">started <span id="started">–</span> · updated <span id="updated">–</span> · <a id="metrics-link" href="metrics">/metrics</a> · <a href="api/status">/api/status</a> <span id="error"></span></div>
<div class="muted"><span id="config-state"></span> <button type="button" id="reload-config">Reload config</button><span id="reload-answer" class="answer"></span></div>
<h2>Cache</h2>
<div class="cards">
<div class="card">fill <b id="cache-fill">–</b><meter id="cache-meter" min="0" max="1" low="0.8" high="0.95" value="0"></meter><span id="cache-size">–</span> of <span id="cache-max">–</span></div>
${card('blobs', 'cache-blobs')}${card('evictions', 'cache-evictions')}
<div class="card">storage <b id="storage-state">–</b> <span id="storage-reason" class="muted"></span></div>
</div>
<h2>Since start</h2>
<div class="cards">
${card('hit ratio (client pulls)', 'hit-ratio')}${card('downloaded from upstream', 'bytes-downloaded')}${card('served to clients', 'bytes-served')}
${card('served from cache', 'bytes-cache')}${card('saved (served − downloaded)', 'bytes-saved')}${card('downloads now', 'downloads')}${card('digest mismatches', 'mismatches')}
</div>
<h2>Last hours</h2>
<div class="charts">
${chart('hit ratio per minute', 'chart-hits', ['hit ratio'])}
${chart('bytes per minute', 'chart-bytes', ['served', 'downloaded'])}
${chart('errors per minute', 'chart-errors', ['upstream errors', '5xx answers'])}
</div>
<h2>In flight</h2>
${table('inflight', ['blob', 'repository', 'progress', 'rate', 'followers'])}
<h2>Cache lookups</h2>
${table('lookups', ['kind', 'hit', 'miss', 'coalesced', 'stale', 'negative'])}
<h2>Top repositories</h2>
${table('repos', ['upstream', 'repository', 'bytes served'])}
<h2>Upstreams</h2>
${table('upstreams', ['name', 'url', 'state', 'last status', 'rate limit left', 'requests', 'errors', 'last error'])}
<div id="cluster-section" hidden><h2>Cluster</h2>
<div class="muted" id="cluster-traffic"></div>
${table('cluster', ['member', 'state', 'last seen', 'last error'])}</div>
<h2>Sync</h2>
${table('sync', ['entry', 'state', 'schedule', 'next run', 'last run', 'started by', 'images', 'bytes', 'error', ''])}
<h2>Cached images</h2>
<input type="search" id="image-search" placeholder="filter: repository, tag or platform" aria-label="filter cached images"> <button type="button" id="image-reload">reload</button> <span id="image-count" class="muted"></span>
${table('images', ['repository', 'tag', 'platforms', 'size', 'last pulled', 'pinned', 'complete'])}
<h2>Point your nodes at it</h2>
<div class="muted">docker</div><pre id="snippet-docker"></pre>
<div class="muted">containerd (CRI registry config_path = "/etc/containerd/certs.d")</div><pre id="snippet-containerd"></pre>
<div class="muted">podman: /etc/containers/registries.conf</div><pre id="snippet-podman"></pre>`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>regmirror status</title><style>${STATUS_PAGE_STYLE}</style></head>
<body>${BODY}
<script>${SCRIPT}</script>
</body></html>
`;

/** Only this page's own script and style may run; it talks to its own origin only. */
export const STATUS_PAGE_CSP = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STATUS_PAGE_STYLE)}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
