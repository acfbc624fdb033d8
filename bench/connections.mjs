// npm run bench:connections   (or node bench/connections.mjs [--clients N] [--seconds N] [--reps N] [--baseline DIR] [--node-arg=FLAG ...] after npm run build)
// New connections under load: 200 clients on a mixed workload (manifest GETs by tag and digest,
// small blob GETs, HEADs that close their connection) against regmirror and the reference
// (distribution in proxy mode) in turn, on one upstream; meanwhile a probe opens a fresh connection
// every 100 ms for one manifest GET. Reports the probe's connect → first byte p50/p99, the same for
// the clients' own reconnects, the latency of requests on kept-open connections, the request rate,
// the accept queue of the listener and peak RSS. Target: probe p99 ≤ 100 ms with 200 clients.
// `--baseline DIR` adds another regmirror build (a checkout with dist/ built) as a third system.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mixedWorkload, runLoad } from './lib/load.mjs';
import { startDistribution, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '15' },
    reps: { type: 'string', default: '2' },
    'blob-kib': { type: 'string', default: '256' },
    'think-ms': { type: 'string', default: '200' },
    baseline: { type: 'string' },
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
const clients = Math.max(1, Math.min(1000, Number(values.clients)));
const seconds = Math.max(2, Math.min(120, Number(values.seconds)));
const reps = Math.max(1, Math.min(10, Number(values.reps)));
const work = mkdtempSync(join(tmpdir(), 'regmirror-conn-'));
process.on('exit', () => {
  stopAllSync();
  if (values.keep) process.stderr.write(`kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => process.exit(3), (reps * 3 * (seconds + 40) + 120) * 1000).unref();
const log = (m) => process.stderr.write(`[connections] ${m}\n`);
const loadStart = loadavg();

const layer = randomBlobFile(join(work, 'layer'), Number(values['blob-kib']) * 1024);
const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'up') });
const upstreamUrl = `http://${upstream.address}`;
const image = await pushImage(upstreamUrl, 'library/bench-conn', '1', [layer]);
const workload = mixedWorkload(image);

let n = 0;
const start = async (sys) => {
  const name = `${sys}-${++n}`;
  const storage = join(work, name);
  mkdirSync(storage);
  const proc =
    sys === 'reference'
      ? await startDistribution({ name, dir: work, storage, proxy: upstreamUrl })
      : await startRegmirror({ name, dir: work, storage, upstream: upstreamUrl, root: sys === 'baseline' ? resolve(values.baseline) : root, nodeArgs: values['node-arg'] });
  // Warm: everything the load asks for is cached before it starts.
  for (const m of workload.mix) {
    const res = await fetch(`http://${proc.address}${m.path}`, { method: m.method, headers: m.headers });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${sys} warm-up ${m.method} ${m.path}: ${res.status}`);
  }
  return proc;
};

const systems = values.only ? values.only.split(',') : values.baseline ? ['regmirror', 'reference', 'baseline'] : ['regmirror', 'reference'];
const procs = {};
for (const sys of systems) procs[sys] = await start(sys);
const results = Object.fromEntries(systems.map((s) => [s, []]));
for (let rep = 0; rep < reps; rep++) {
  for (const sys of rep % 2 ? [...systems].reverse() : systems) {
    const r = await runLoad(procs[sys].address, [procs[sys].pid], { clients, seconds, workload, thinkMs: Number(values['think-ms']) });
    results[sys].push(r);
    log(`${sys} rep ${rep}: probe p50 ${r.probe.p50?.toFixed(1)} p99 ${r.probe.p99?.toFixed(1)} ms, kept p50 ${r.kept.p50?.toFixed(1)} p99 ${r.kept.p99?.toFixed(1)} ms, ${r.rps.toFixed(0)} req/s, ${r.newConnectionsPerSecond.toFixed(0)} new conn/s, accept queue max ${r.maxQueue}, errors ${r.errors} ${r.lastError}`);
  }
}
for (const p of Object.values(procs)) await stopProcess(p);
await stopProcess(upstream);

const med = (sys, f) => median(results[sys].map(f).filter((x) => x !== null && x !== undefined));
const rows = [
  ['probe: new connection → first byte, p50 (ms)', (r) => r.probe.p50],
  ['probe: new connection → first byte, p99 (ms)', (r) => r.probe.p99],
  ['clients\' reconnects → first byte, p50 (ms)', (r) => r.fresh.p50],
  ['clients\' reconnects → first byte, p99 (ms)', (r) => r.fresh.p99],
  ['kept-open requests, p50 (ms)', (r) => r.kept.p50],
  ['kept-open requests, p99 (ms)', (r) => r.kept.p99],
  ['requests/s', (r) => r.rps],
  ['new connections/s', (r) => r.newConnectionsPerSecond],
  ['accept queue, median of samples', (r) => r.medianQueue],
  ['accept queue, max', (r) => r.maxQueue],
  ['server CPU per request (µs)', (r) => r.cpuPerRequestUs],
  ['peak RSS (MiB)', (r) => r.peakRss / 1048576],
  ['errors', (r) => r.errors + r.badStatus],
];
const la = loadavg();
let out = `\n${clients} clients, ${seconds} s per run after a 3 s warm-up, ${reps} runs per system (medians); ${layer.size / 1024} KiB blob; each client pauses ${values['think-ms']} ms on average between requests; load average ${loadStart.map((x) => x.toFixed(1)).join('/')} at the start, ${la.map((x) => x.toFixed(1)).join('/')} at the end\n\n`;
out += `| measurement | ${systems.join(' | ')} |${systems.includes('reference') && systems.includes('regmirror') ? ' regmirror ÷ reference |' : ''}\n|---|${systems.map(() => '---|').join('')}${systems.includes('reference') && systems.includes('regmirror') ? '---|' : ''}\n`;
for (const [label, f] of rows) {
  const cells = systems.map((s) => med(s, f));
  const ratio = systems.includes('reference') && systems.includes('regmirror') ? ` ${(med('regmirror', f) / med('reference', f)).toFixed(2)}× |` : '';
  out += `| ${label} | ${cells.map((c) => (c >= 100 ? c.toFixed(0) : c.toFixed(1))).join(' | ')} |${ratio}\n`;
}
process.stdout.write(out);
process.exit(0);
