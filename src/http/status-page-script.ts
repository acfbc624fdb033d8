/**
 * The status page's main script: polls /api/status and fills the numbers and tables. Every value
 * goes through textContent or an attribute (repository names and errors come from clients and
 * upstreams, so nothing is ever parsed as HTML); each number carries its raw value in data-value.
 * Fields other parts of the server may add (an upstream's lastError, a sync entry's schedule) are
 * shown when present and left blank when not.
 */
export const STATUS_PAGE_SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const fmt = {
  bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + u[i];
  },
  rate(n) { return n === null ? '–' : fmt.bytes(n) + '/s'; },
  percent(r) { return r === null ? '–' : (r * 100).toFixed(1) + ' %'; },
  count(n) { return n === null ? '–' : String(n); },
  time(s) { return s === null || s === undefined ? '–' : new Date(s).toLocaleString(); },
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
  else td.textContent = value === null || value === undefined ? '–' : String(value);
  if (cls) td.className = cls;
  return td;
}
function fill(id, rows, empty) {
  const body = $(id);
  body.replaceChildren();
  if (rows.length === 0) { const r = body.insertRow(); const td = r.insertCell(); td.colSpan = 9; td.className = 'muted'; td.textContent = empty; }
  return body;
}
const syncAnswers = new Map();
async function runSync(job) {
  syncAnswers.set(job, 'starting…');
  renderSyncAnswer(job);
  try {
    const res = await fetch('api/sync/' + encodeURIComponent(job), { method: 'POST', cache: 'no-store' });
    let said = '';
    try { const body = await res.json(); said = body.message || body.status || (body.errors && body.errors[0] && body.errors[0].message) || ''; } catch (e) { said = ''; }
    const what = res.status === 202 ? 'started' : res.status === 409 ? 'already running' : res.status === 401 || res.status === 403 ? 'not allowed' : 'failed';
    syncAnswers.set(job, res.status + ' ' + what + (said ? ': ' + said : ''));
  } catch (e) { syncAnswers.set(job, 'failed: ' + e.message); }
  renderSyncAnswer(job);
  refresh();
}
function renderSyncAnswer(job) {
  for (const el of document.querySelectorAll('#sync .answer')) if (el.dataset.job === job) el.textContent = syncAnswers.get(job) || '';
}
function renderSync(list) {
  const sync = fill('sync', list, 'no sync entries configured or run');
  for (const j of list) {
    const r = sync.insertRow(); r.dataset.job = j.job;
    cell(r, j.job);
    cell(r, j.running ? 'running' : j.lastResult, undefined, j.running ? '' : j.lastResult);
    cell(r, j.schedule); cell(r, fmt.time(j.nextRunAt));
    cell(r, fmt.time(j.lastRunAt)); cell(r, j.lastOrigin);
    cell(r, j.images, 'count'); cell(r, j.bytes, 'bytes'); cell(r, j.lastError);
    const td = r.insertCell();
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = 'Run now'; b.disabled = j.running;
    b.addEventListener('click', () => runSync(j.job));
    const answer = document.createElement('span');
    answer.className = 'answer'; answer.dataset.job = j.job; answer.textContent = syncAnswers.get(j.job) || '';
    td.append(b, answer);
  }
}
function renderInFlight(list) {
  const body = fill('inflight', list, 'no downloads running');
  for (const d of list) {
    const r = body.insertRow(); r.dataset.digest = d.digest;
    cell(r, d.digest.slice(0, 19) + '…', undefined, 'digest').title = d.digest;
    cell(r, d.upstream + '/' + d.repository);
    const p = r.insertCell(); p.dataset.value = String(d.bytes);
    const bar = document.createElement('progress');
    if (d.size !== null) { bar.max = d.size; bar.value = d.bytes; }
    const label = document.createElement('span');
    label.textContent = ' ' + fmt.bytes(d.bytes) + ' / ' + (d.size === null ? '?' : fmt.bytes(d.size));
    p.append(bar, label);
    cell(r, d.bytesPerSecond, 'rate'); cell(r, d.followers, 'count');
  }
}
// One row under its upstream per endpoint of upstreams.<name>.endpoints, in the order they are tried.
function endpointRow(body, u, ep, i) {
  const r = body.insertRow(); r.dataset.endpoint = u.name + '#' + (i + 1);
  cell(r, '↳ endpoint ' + (i + 1)); cell(r, ep.url); cell(r, ep.state, undefined, ep.state);
  cell(r, ep.until ? 'until ' + fmt.time(ep.until) : null); cell(r, null); cell(r, null); cell(r, null);
  const e = cell(r, ep.lastError ? ep.lastError.cause + ' (' + fmt.time(ep.lastError.at) + ')' : null, undefined, 'lasterror');
  if (ep.lastError) e.title = ep.lastError.at;
}
function note(td, text, cls) {
  const d = document.createElement('div'); d.className = 'note ' + cls; d.textContent = text; td.append(d);
}
function renderConfig(c) {
  const el = $('config-state');
  if (!c) { el.textContent = ''; return; }
  const r = c.lastReload;
  el.textContent = 'config loaded ' + fmt.time(c.loadedAt) + (r ? ' · last reload ' + fmt.time(r.at) + ': ' + (r.ok ? 'applied' : 'refused: ' + r.error) : '') +
    (r && r.restartNeeded.length > 0 ? ' · needs a restart: ' + r.restartNeeded.join(', ') : '');
  el.className = r && !r.ok ? 'failure' : '';
}
async function reloadConfig() {
  const answer = $('reload-answer');
  answer.textContent = 'reloading…';
  try {
    const res = await fetch('api/reload', { method: 'POST', cache: 'no-store' });
    let body = {};
    try { body = await res.json(); } catch (e) { body = {}; }
    const said = res.ok ? (body.changed.length > 0 ? 'applied: ' + body.changed.join(', ') : 'nothing to apply') : (body.errors && body.errors[0] && body.errors[0].message) || '';
    const what = res.ok ? '' : res.status === 404 ? 'no config file to reload' : res.status === 401 || res.status === 403 ? 'not allowed' : 'failed';
    answer.textContent = res.status + ' ' + [what, said].filter((x) => x).join(': ');
  } catch (e) { answer.textContent = 'failed: ' + e.message; }
  refresh();
}
function renderUpstreams(list) {
  const ups = fill('upstreams', list, 'none configured');
  for (const u of list) {
    const r = ups.insertRow(); r.dataset.upstream = u.name;
    cell(r, u.name);
    // How requests to it go, under its url: through a proxy, and whether its certificates are checked.
    const where = cell(r, u.url);
    if (u.proxy) note(where, 'via ' + u.proxy, 'muted');
    if (u.insecureSkipVerify) note(where, 'TLS not verified', 'failure');
    const st = cell(r, u.state, undefined, u.state);
    if (u.authFailure) { st.title = u.authFailure.at; st.textContent = u.state + ': ' + u.authFailure.message; }
    cell(r, u.lastStatus); cell(r, u.rateLimitRemaining, 'count'); cell(r, u.requests, 'count'); cell(r, u.errors, 'count');
    const e = cell(r, u.lastError ? u.lastError.cause : null, undefined, 'lasterror');
    if (u.lastError) { e.title = u.lastError.at; e.textContent = u.lastError.cause + ' (' + fmt.time(u.lastError.at) + ')'; }
    (u.endpoints || []).forEach((ep, i) => endpointRow(ups, u, ep, i));
  }
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
  const t = s.traffic;
  put('hit-ratio', t.hitRatio, 'percent');
  put('bytes-downloaded', t.bytesDownloaded, 'bytes');
  put('bytes-served', t.bytesServed.cache + t.bytesServed.upstream, 'bytes');
  put('bytes-cache', t.bytesServed.cache, 'bytes');
  put('bytes-saved', t.bytesSaved, 'bytes');
  put('downloads', t.downloadsInFlight, 'count');
  put('mismatches', t.digestMismatches, 'count');
  const lookups = $('lookups');
  lookups.replaceChildren();
  for (const kind of ['blob', 'manifest']) {
    const r = lookups.insertRow(); r.dataset.kind = kind;
    cell(r, kind);
    for (const o of ['hit', 'miss', 'coalesced', 'stale', 'negative']) cell(r, t.lookups[kind][o], 'count').dataset.outcome = o;
  }
  renderInFlight(s.inFlight || []);
  const repos = fill('repos', s.topRepositories, 'nothing served yet');
  for (const x of s.topRepositories) {
    const r = repos.insertRow(); r.dataset.repository = x.upstream + '/' + x.repository;
    cell(r, x.upstream); cell(r, x.repository); cell(r, x.bytes, 'bytes');
  }
  renderUpstreams(s.upstreams);
  renderConfig(s.config);
  renderSync(s.sync);
  if (s.history && window.regmirrorCharts) window.regmirrorCharts(s.history);
  if (window.regmirrorSnippets) window.regmirrorSnippets(s);
  if (window.regmirrorCluster) window.regmirrorCluster(s.cluster);
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
`;

/** Runs last, once the helpers the other scripts define exist. */
export const STATUS_PAGE_START = `
$('reload-config').addEventListener('click', reloadConfig);
refresh();
setInterval(refresh, 5000);
`;
