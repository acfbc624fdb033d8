/**
 * Charts of /api/status `history` (per-minute sums over the last hours) as inline SVG: built with
 * createElementNS and attributes only. Each line keeps its values in data-values, so a test (or a
 * curious operator) can read what was drawn.
 */
export const STATUS_PAGE_CHARTS = `
const SVG = 'http://www.w3.org/2000/svg';
const CHART = { w: 320, h: 120, left: 46, right: 6, top: 8, bottom: 16 };
function svgEl(parent, name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  parent.appendChild(el);
  return el;
}
function hhmm(ms) { return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); }
// lines: [{ name, values (null: no data that minute) }], kind: a fmt function name for the axis.
function drawChart(id, lines, kind, fromMs, stepMs) {
  const svg = $(id);
  svg.replaceChildren();
  svg.setAttribute('viewBox', '0 0 ' + CHART.w + ' ' + CHART.h);
  const n = Math.max(1, ...lines.map((l) => l.values.length));
  const all = lines.flatMap((l) => l.values.filter((v) => v !== null));
  const max = kind === 'percent' ? 1 : Math.max(1, ...all);
  svg.dataset.max = String(max);
  const plotW = CHART.w - CHART.left - CHART.right, plotH = CHART.h - CHART.top - CHART.bottom;
  const x = (i) => CHART.left + (n === 1 ? plotW : (i * plotW) / (n - 1));
  const y = (v) => CHART.top + plotH - (v / max) * plotH;
  svgEl(svg, 'line', { class: 'axis', x1: CHART.left, y1: CHART.top + plotH, x2: CHART.w - CHART.right, y2: CHART.top + plotH });
  svgEl(svg, 'line', { class: 'axis', x1: CHART.left, y1: CHART.top, x2: CHART.left, y2: CHART.top + plotH });
  svgEl(svg, 'text', { x: CHART.left - 3, y: CHART.top + 8, 'text-anchor': 'end' }).textContent = fmt[kind](max);
  svgEl(svg, 'text', { x: CHART.left - 3, y: CHART.top + plotH, 'text-anchor': 'end' }).textContent = fmt[kind](0);
  svgEl(svg, 'text', { x: CHART.left, y: CHART.h - 3 }).textContent = hhmm(fromMs);
  svgEl(svg, 'text', { x: CHART.w - CHART.right, y: CHART.h - 3, 'text-anchor': 'end' }).textContent = hhmm(fromMs + (n - 1) * stepMs);
  lines.forEach((line, k) => {
    let d = '', pen = 'M';
    line.values.forEach((v, i) => {
      if (v === null) { pen = 'M'; return; }
      d += pen + x(i).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
      // A minute with no neighbour to join still shows: a dot-sized segment.
      const next = line.values[i + 1];
      if (pen === 'M' && (next === undefined || next === null)) d += 'L' + (x(i) - 2).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
      pen = 'L';
    });
    const path = svgEl(svg, 'path', { class: 's' + k, d: d.trim() || 'M0 0' });
    path.dataset.series = line.name;
    path.dataset.values = line.values.map((v) => (v === null ? '' : String(v))).join(',');
  });
}
// At least an hour on the axis: a fresh start draws at the right edge rather than across the chart.
const MIN_STEPS = 60;
window.regmirrorCharts = function (h) {
  const step = h.stepSeconds * 1000, pad = Math.max(0, MIN_STEPS - h.series.lookups.length);
  const from = Date.parse(h.from) - pad * step;
  const s = {};
  for (const [k, v] of Object.entries(h.series)) s[k] = Array(pad).fill(null).concat(v);
  const ratio = s.lookups.map((n, i) => (n === null || n === 0 ? null : s.hits[i] / n));
  drawChart('chart-hits', [{ name: 'hitRatio', values: ratio }], 'percent', from, step);
  drawChart('chart-bytes', [{ name: 'bytesServed', values: s.bytesServed }, { name: 'bytesDownloaded', values: s.bytesDownloaded }], 'bytes', from, step);
  drawChart('chart-errors', [{ name: 'upstreamErrors', values: s.upstreamErrors }, { name: 'serverErrors', values: s.serverErrors }], 'count', from, step);
};
`;
