// Medians, the per-figure targets against the comparison system, and BENCHMARKS.md.
import { cpus, release, totalmem } from 'node:os';

const load = (l) => l.map((x) => x.toFixed(1)).join(' / ');

const MiB = 1024 * 1024;

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const fmt = (v, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const gbps = (v) => `${fmt(v)} GB/s`;
const secs = (v) => `${fmt(v, v < 10 ? 3 : 1)} s`;
const rate = (v) => `${fmt(v, 0)} req/s`;
const mib = (v) => `${fmt(v / MiB, 0)} MiB`;
const times = (v) => `${fmt(v)}×`;

/** The table: one row per figure, the ratio always regmirror ÷ the row's comparison system. */
export function rows(r) {
  const s = r.samples;
  const m = (name, sys) => median(s[name][sys]);
  const big = r.config.bigSize;
  const out = [];
  const row = (label, ref, mine, show, target, pass, refLabel) => {
    const ratio = mine / ref;
    out.push({ label, ref: show(ref), mine: show(mine), ratio: times(ratio), target: target ?? '', met: target ? (pass(ratio, mine) ? 'yes' : '**no**') : '', refLabel });
  };
  row('1. warm blob, one stream (throughput)', m('warmBlob', 'reference'), m('warmBlob', 'regmirror'), gbps, '≥ 0.95×', (x) => x >= 0.95);
  row('1. warm blob vs plain Node file server', m('warmBlob', 'fileServer'), m('warmBlob', 'regmirror'), gbps, '≥ 0.9×', (x) => x >= 0.9, 'file server');
  row('1. warm blob vs distribution serving its own storage', m('warmBlob', 'upstream'), m('warmBlob', 'regmirror'), gbps, '', null, 'upstream');
  row('1. server CPU per warm blob GET', m('warmBlobCpu', 'reference'), m('warmBlobCpu', 'regmirror'), secs, '');
  row('1. server CPU per warm blob GET vs plain file server', m('warmBlobCpu', 'fileServer'), m('warmBlobCpu', 'regmirror'), secs, '', null, 'file server');
  row('2. warm image pull, skopeo (wall time)', m('warmPull', 'reference'), m('warmPull', 'regmirror'), secs, '');
  row('3. cold blob (wall time)', m('coldBlob', 'reference'), m('coldBlob', 'regmirror'), secs, '≤ 0.8×', (x) => x <= 0.8);
  row('3. cold blob: upstream bytes ÷ blob size', m('coldBlobUpstream', 'reference') / big, m('coldBlobUpstream', 'regmirror') / big, times, '');
  row('3. cold blob: server CPU (until the upstream went quiet)', m('coldBlobCpu', 'reference'), m('coldBlobCpu', 'regmirror'), secs, '');
  row('3. cold image pull, skopeo (wall time)', m('coldPull', 'reference'), m('coldPull', 'regmirror'), secs, '≤ 0.8×', (x) => x <= 0.8);
  const n = r.config.concurrency;
  row(`4. ${n} concurrent cold GETs (wall time)`, m('concurrent', 'reference'), m('concurrent', 'regmirror'), secs, '');
  const oneCold = m('coldBlob', 'regmirror');
  row(`4. regmirror: ${n} concurrent ÷ one cold GET`, oneCold, m('concurrent', 'regmirror'), secs, '≤ 1.5×', (x) => x <= 1.5, 'one cold GET');
  row(`4. ${n} concurrent warm GETs (cached: the floor for 4)`, m('concurrentWarm', 'reference'), m('concurrentWarm', 'regmirror'), secs, '');
  row(`4. regmirror: ${n} concurrent warm ÷ one cold GET`, oneCold, m('concurrentWarm', 'regmirror'), secs, '', null, 'one cold GET');
  row(`4. regmirror: ${n} concurrent cold ÷ ${n} concurrent warm`, m('concurrentWarm', 'regmirror'), m('concurrent', 'regmirror'), secs, '', null, `${n} warm`);
  row('4. upstream bytes ÷ blob size', m('concurrentUpstream', 'reference') / big, m('concurrentUpstream', 'regmirror') / big, times, 'regmirror = 1×', (_x, mine) => Math.abs(mine - 1) < 0.001);
  row(`4. ${n} concurrent cold GETs: server CPU`, m('concurrentCpu', 'reference'), m('concurrentCpu', 'regmirror'), secs, '');
  row('4. upstream blob GETs', m('concurrentGets', 'reference'), m('concurrentGets', 'regmirror'), (v) => fmt(v, 0), '');
  row(`5. manifest GET by tag, ${r.config.connections} connections`, m('tagGet', 'reference'), m('tagGet', 'regmirror'), rate, '≥ 10×', (x) => x >= 10);
  row(`5. manifest GET by digest, ${r.config.connections} connections`, m('digestGet', 'reference'), m('digestGet', 'regmirror'), rate, '≥ 2×', (x) => x >= 2);
  row(`5. manifest HEAD by digest, ${r.config.connections} connections`, m('digestHead', 'reference'), m('digestHead', 'regmirror'), rate, '≥ 2×', (x) => x >= 2);
  row('6. peak RSS (VmHWM) during 1-4', r.rss.reference, r.rss.regmirror, mib, 'regmirror ≤ 150 MiB', (_x, mine) => mine <= 150 * MiB);
  row('6. peak RSS (VmHWM) during 5', r.rssManifest.reference, r.rssManifest.regmirror, mib, '');
  return out;
}

export function table(r) {
  const lines = ['| measurement | compared with | regmirror | ratio | target | met |', '|---|---|---|---|---|---|'];
  for (const x of rows(r)) lines.push(`| ${x.label} | ${x.refLabel ? `${x.refLabel}: ` : ''}${x.ref} | ${x.mine} | ${x.ratio} | ${x.target} | ${x.met} |`);
  return lines.join('\n');
}

function samplesSection(r) {
  const lines = ['| series | system | samples (run order) |', '|---|---|---|'];
  for (const [name, bySystem] of Object.entries(r.samples)) {
    for (const [sys, values] of Object.entries(bySystem)) {
      const shown = values.map((v) => (v >= 1e6 ? `${(v / MiB).toFixed(0)}Mi` : Number.isInteger(v) || v >= 100 ? v.toFixed(0) : v.toFixed(3)));
      lines.push(`| ${name} | ${sys} | ${shown.join(', ')} |`);
    }
  }
  return lines.join('\n');
}

export function markdown(r, versions) {
  const c = r.config;
  const cpu = cpus();
  return `# Benchmarks

regmirror against the reference: the CNCF distribution registry in proxy mode (\`proxy: remoteurl\`),
both pulling through from a third process, a distribution registry seeded through the push API.
Everything runs on loopback and the same disk. Each measurement runs alternately against the
reference and regmirror (the order flips every repetition), ${c.reps} times; the table shows medians.

**These machines are noisy: trust ratios from one run, never absolute numbers compared across runs.**

## Machine

- ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, Linux ${release()}
- Node ${process.version}; distribution ${versions.distribution}; ${versions.skopeo}; ${versions.curl}; ${versions.wrk}; ${versions.ab}
- run of ${r.date}, ${(r.elapsedSeconds / 60).toFixed(1)} minutes; load average (1/5/15 min) ${load(r.loadStart)} at the start, ${load(r.loadEnd)} at the end

## Results

Ratio = regmirror ÷ the compared figure (higher is better for GB/s and req/s, lower for seconds).
Sizes: one ${c.bigSize / MiB} MiB layer (1, 3, 4); a ${c.multiCount}-layer image of ${(c.multiTotal / MiB).toFixed(0)} MiB (2, 3).
GB/s = 10⁹ bytes per second.

${table(r)}

- Clients: \`curl\` to /dev/null for blobs (time_total), \`skopeo copy docker://… dir:…\` for images,
  \`wrk -t2 -c${c.connections} -d${c.wrkSeconds}s\` for manifest GETs, \`ab -k -i -c${c.connections} -t${c.wrkSeconds}\` for HEAD
  (wrk's parser waits for a HEAD response's Content-Length bytes and never completes one).
- Cold runs start both servers on fresh, empty storage before every run. "Upstream bytes" are the
  body bytes of blob GETs in the upstream's access log, counted after the upstream went quiet.
- "Concurrent warm GETs" are 4's GETs of the already cached blob, against the long-lived warm
  servers: what delivering ${c.concurrency} × the blob to ${c.concurrency} curl processes costs on this machine, with no upstream,
  hashing or writing. 4's "≤ 1.5× one cold GET" cannot hold where this floor alone is above it.
- Warm runs were served from cache: upstream blob GETs during 1 and 2: reference ${r.warmUpstreamGets.reference}, regmirror ${r.warmUpstreamGets.regmirror}.
- Server CPU is user + system time of the server process (all threads) from \`/proc/PID/stat\`
  around the measurement: on a shared machine it moves much less than wall time.
- Peak RSS is the highest \`VmHWM\` over every server process of 1-4 (each cold run is a new process).
- Both servers log at \`info\`, to a file; regmirror runs with the node flags of \`npm start\`.${r.nodeArgs.length ? `\n- regmirror ran with \`node ${r.nodeArgs.join(' ')}\`.` : ''}

## Reproduce

\`\`\`sh
apt-get install -y docker-registry skopeo wrk apache2-utils curl
npm ci && npm run bench          # this file; ${c.reps} repetitions, about ${Math.ceil(r.elapsedSeconds / 60)} minutes
npm run bench -- --quick         # small sizes, 1 repetition: checks the harness still works
node bench/compare.mjs --only warm|cold|concurrent [--tls] [--baseline DIR]   # quick A/B while optimising; --tls: an https upstream; --recycle-pages: see "the cost of fresh pages"
node bench/profile.mjs warm|cold  # regmirror under --cpu-prof, with a summary
node bench/cold-floor.mjs        # the parts of a cold GET alone: a floor for any store-while-streaming mirror
node bench/alloc-profile.mjs tag >/dev/null   # bytes allocated per manifest GET, and where
\`\`\`

## Samples

${samplesSection(r)}
`;
}
