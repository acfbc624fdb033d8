import { createHash } from 'node:crypto';

/**
 * The status page: one static HTML document whose script polls /api/status. No framework and no
 * build step; every value goes through textContent (repository names come from clients, so they are
 * never parsed as HTML). Each number carries its raw value in data-value for scripts and tests.
 */
const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.muted{color:#777}.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:11rem}
.card b{display:block;font-size:1.3rem}meter{width:100%}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176c2c}.degraded{color:#a35c00}.down,.failure{color:#b00020}.unknown{color:#777}.offline{color:#555;font-style:italic}.success{color:#176c2c}
#error{color:#b00020}`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const fmt = {
  bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + u[i];
  },
  percent(r) { return r === null ? '–' : (r * 100).toFixed(1) + ' %'; },
  count(n) { return n === null ? '–' : String(n); },
  time(s) { return s === null ? '–' : new Date(s).toLocaleString(); },
};
window.regmirrorFormat = fmt;
function put(id, value, kind) {
  const el = $(id);
  el.dataset.value = value === null ? '' : String(value);
  el.textContent = fmt[kind](value);
}
function cell(row, value, kind, cls) {
  const td = row.insertCell();
  if (kind) { td.dataset.value = value === null ? '' : String(value); td.textContent = fmt[kind](value); td.className = 'n'; }
  else td.textContent = value === null ? '–' : String(value);
  if (cls) td.className = cls;
  return td;
}
function fill(id, rows, empty) {
  const body = $(id);
  body.replaceChildren();
  if (rows.length === 0) { const r = body.insertRow(); const td = r.insertCell(); td.colSpan = 8; td.className = 'muted'; td.textContent = empty; }
  return body;
}
function render(s) {
  $('version').textContent = s.version ? 'v' + s.version : '';
  $('started').textContent = fmt.time(s.startedAt);
  put('cache-size', s.cache.sizeBytes, 'bytes');
  put('cache-max', s.cache.maxSizeBytes, s.cache.maxSizeBytes === null ? 'count' : 'bytes');
  put('cache-fill', s.cache.fill, 'percent');
  $('cache-meter').value = s.cache.fill ?? 0;
  put('cache-blobs', s.cache.blobs, 'count');
  put('cache-evictions', s.cache.evictions, 'count');
  // A full or read-only disk: still serving, from upstream, without caching (the App adds storage).
  $('storage-state').textContent = s.storage ? s.storage.state : '–';
  $('storage-reason').textContent = s.storage && s.storage.reason ? s.storage.reason : '';
  put('hit-ratio', s.traffic.hitRatio, 'percent');
  put('bytes-saved', s.traffic.bytesSaved, 'bytes');
  put('bytes-upstream', s.traffic.bytesServed.upstream, 'bytes');
  put('downloads', s.traffic.downloadsInFlight, 'count');
  put('mismatches', s.traffic.digestMismatches, 'count');
  const lookups = $('lookups');
  lookups.replaceChildren();
  for (const kind of ['blob', 'manifest']) {
    const r = lookups.insertRow(); r.dataset.kind = kind;
    cell(r, kind);
    for (const o of ['hit', 'miss', 'coalesced', 'stale']) cell(r, s.traffic.lookups[kind][o], 'count').dataset.outcome = o;
  }
  const repos = fill('repos', s.topRepositories, 'nothing served yet');
  for (const x of s.topRepositories) {
    const r = repos.insertRow(); r.dataset.repository = x.upstream + '/' + x.repository;
    cell(r, x.upstream); cell(r, x.repository); cell(r, x.bytes, 'bytes');
  }
  const ups = fill('upstreams', s.upstreams, 'none configured');
  for (const u of s.upstreams) {
    const r = ups.insertRow(); r.dataset.upstream = u.name;
    cell(r, u.name); cell(r, u.url); cell(r, u.state, undefined, u.state);
    cell(r, u.lastStatus); cell(r, u.rateLimitRemaining, 'count'); cell(r, u.requests, 'count'); cell(r, u.errors, 'count');
    cell(r, u.lastError && fmt.time(u.lastError.at) + ' ' + u.lastError.cause);
  }
  const sync = fill('sync', s.sync, 'no sync jobs have run');
  for (const j of s.sync) {
    const r = sync.insertRow(); r.dataset.job = j.job;
    cell(r, j.job); cell(r, j.running ? 'running' : j.lastResult, undefined, j.running ? '' : j.lastResult);
    cell(r, fmt.time(j.lastRunAt)); cell(r, fmt.time(j.lastSuccessAt)); cell(r, j.images, 'count'); cell(r, j.bytes, 'bytes'); cell(r, j.lastError);
  }
  $('updated').textContent = new Date().toLocaleTimeString();
  document.body.dataset.loaded = 'true';
}
async function refresh() {
  try {
    const res = await fetch('api/status', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    render(await res.json());
    $('error').textContent = '';
  } catch (e) { $('error').textContent = 'cannot load status: ' + e.message; }
}
refresh();
setInterval(refresh, 5000);
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>regmirror status</title><style>${STYLE}</style></head>
<body>
<h1>regmirror <span id="version" class="muted"></span></h1>
<div class="muted">started <span id="started">–</span> · updated <span id="updated">–</span> <span id="error"></span></div>
<h2>Cache</h2>
<div class="cards">
<div class="card">fill <b id="cache-fill">–</b><meter id="cache-meter" min="0" max="1" low="0.8" high="0.95" value="0"></meter><span id="cache-size">–</span> of <span id="cache-max">–</span></div>
<div class="card">blobs <b id="cache-blobs">–</b></div>
<div class="card">evictions <b id="cache-evictions">–</b></div>
<div class="card">storage <b id="storage-state">–</b> <span id="storage-reason" class="muted"></span></div>
</div>
<h2>Since start</h2>
<div class="cards">
<div class="card">hit ratio <b id="hit-ratio">–</b></div>
<div class="card">bytes saved <b id="bytes-saved">–</b></div>
<div class="card">from upstream <b id="bytes-upstream">–</b></div>
<div class="card">downloads now <b id="downloads">–</b></div>
<div class="card">digest mismatches <b id="mismatches">–</b></div>
</div>
<h2>Cache lookups</h2>
<table><thead><tr><th>kind</th><th>hit</th><th>miss</th><th>coalesced</th><th>stale</th></tr></thead><tbody id="lookups"></tbody></table>
<h2>Top repositories</h2>
<table><thead><tr><th>upstream</th><th>repository</th><th>bytes served</th></tr></thead><tbody id="repos"></tbody></table>
<h2>Upstreams</h2>
<table><thead><tr><th>name</th><th>url</th><th>state</th><th>last status</th><th>rate limit left</th><th>requests</th><th>errors</th><th>last error</th></tr></thead><tbody id="upstreams"></tbody></table>
<h2>Sync jobs</h2>
<table><thead><tr><th>job</th><th>last result</th><th>last run</th><th>last success</th><th>images</th><th>bytes</th><th>error</th></tr></thead><tbody id="sync"></tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;

/** Only this page's own script and style may run; it talks to its own origin only. */
export const STATUS_PAGE_CSP = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
