/**
 * The status page's slower parts: the node snippets, filled with the mirror's own address, and the
 * view of cached images (from /api/images, loaded once and on request: it walks the whole store).
 */
export const STATUS_PAGE_EXTRAS = `
function snippetText(s) {
  const e = s.endpoint;
  if (!e) return null;
  const host = e.host || location.hostname;
  const addr = (host.includes(':') && !host.startsWith('[') ? '[' + host + ']' : host) + ':' + e.port;
  const url = e.scheme + '://' + addr;
  const out = { docker: '', containerd: '', podman: '' };
  if (e.defaultUpstream === 'docker.io') {
    out.docker = '# /etc/docker/daemon.json (Docker Hub images only; then restart dockerd)\\n{\\n  "registry-mirrors": ["' + url + '"]\\n}\\n';
  } else {
    out.docker = '# docker pulls through the mirror with the upstream as a path prefix:\\ndocker pull ' + addr + '/' + e.defaultUpstream + '/org/app:tag\\n';
  }
  for (const u of s.upstreams) {
    const server = u.url ? u.url.replace(/\\/+$/, '') : url;
    out.containerd += '# /etc/containerd/certs.d/' + u.name + '/hosts.toml\\nserver = "' + server + '"\\n\\n[host."' + url + '"]\\n  capabilities = ["pull", "resolve"]\\n\\n';
    out.podman += '[[registry]]\\nprefix = "' + u.name + '"\\nlocation = "' + u.name + '"\\n\\n[[registry.mirror]]\\nlocation = "' + addr +
      (u.name === e.defaultUpstream ? '' : '/' + u.name) + '"\\n' + (e.scheme === 'http' ? 'insecure = true\\n' : '') + '\\n';
  }
  return out;
}
window.regmirrorSnippets = function (s) {
  const text = snippetText(s);
  for (const k of ['docker', 'containerd', 'podman']) {
    const el = $('snippet-' + k);
    const want = text === null ? 'the registry listener is not known here' : text[k].trim();
    if (el.textContent !== want) el.textContent = want;
  }
};
// With cluster: every member as this replica sees it, and this replica's peer traffic.
window.regmirrorCluster = function (c) {
  $('cluster-section').hidden = !c;
  if (!c) return;
  $('cluster-traffic').textContent = 'from peers ' + fmt.bytes(c.bytesFromPeers) + ' · from upstream ' + fmt.bytes(c.bytesFromUpstream) +
    ' · peer hits ' + c.peerHits + ' · misses ' + c.peerMisses + ' · fallbacks ' + c.fallbacks + ' · served to peers ' + c.forwardedServed +
    ' · manifests from peers ' + c.manifestPeerHits + ' (fallbacks ' + c.manifestFallbacks + ')';
  const body = fill('cluster', c.members, 'no members');
  for (const m of c.members) {
    const r = body.insertRow(); r.dataset.member = m.url;
    cell(r, m.url + (m.self ? ' (this replica)' : ''));
    cell(r, m.live ? 'live' : 'not ready', undefined, m.live ? 'ok' : 'degraded');
    cell(r, fmt.time(m.lastSeen));
    cell(r, m.lastError ? m.lastError.cause + ' (' + fmt.time(m.lastError.at) + ')' : null, undefined, 'lasterror');
  }
};
let images = [];
function renderImages() {
  const q = $('image-search').value.trim().toLowerCase();
  const shown = images.filter((i) => q === '' || (i.upstream + '/' + i.repository + ':' + i.tag + ' ' + i.platforms.join(' ')).toLowerCase().includes(q));
  const body = fill('images', shown, images.length === 0 ? 'nothing cached yet' : 'no cached image matches');
  for (const i of shown) {
    const r = body.insertRow(); r.dataset.image = i.upstream + '/' + i.repository + ':' + i.tag;
    cell(r, i.upstream + '/' + i.repository); cell(r, i.tag);
    cell(r, i.platforms.length ? i.platforms.join(', ') : '–');
    cell(r, i.sizeBytes, 'bytes'); cell(r, fmt.time(i.lastPulled));
    cell(r, i.pinned ? 'pinned' : '');
    const c = cell(r, i.blobs.cached + '/' + i.blobs.referenced + ' blobs', undefined, i.blobs.cached === i.blobs.referenced ? 'ok' : 'degraded');
    c.dataset.complete = String(i.blobs.cached === i.blobs.referenced);
  }
  $('image-count').textContent = shown.length + ' of ' + images.length;
}
async function loadImages() {
  $('image-count').textContent = 'loading…';
  try {
    const res = await fetch('api/images', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    images = (await res.json()).images;
    renderImages();
    document.body.dataset.images = 'true';
  } catch (e) { $('image-count').textContent = 'cannot load cached images: ' + e.message; }
}
$('image-search').addEventListener('input', renderImages);
$('image-reload').addEventListener('click', loadImages);
loadImages();
`;
