// npm run bench:rollout [-- --quick] [--reps N] [--size MiB] [--clients N] [--parallel N] [--keep]
// The rollout scenario of issue 21 through ONE mirror: a new 8-layer image pulled by 48 nodes at
// once, cold (fresh, empty storage) and then the same 48 pulls again warm (served from the cache),
// through regmirror and through the reference (distribution in proxy mode), side by side in one run.
// Bars: regmirror's cold wall time ≤ 1.3× its warm wall time, and the upstream sends it the image
// exactly once. Every body is checked by sha256; a wrong one (or a failed pull) fails the run.
import { mkdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pullMany } from './lib/image-pull.mjs';
import { cpuSeconds, peakRss, startDistribution, startRegmirror, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { ROLLOUT_REPO, rolloutRun, rolloutUpstream } from './lib/rollout.mjs';
import { exitWhenDone } from './lib/run.mjs';
import { AGENTS } from './lib/upstream-log.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const run = rolloutRun('rollout', { quickClients: 6, deadlineMinutes: 45 });
const { work, logs, log } = run;
// One client's whole pull is bounded too; the run's deadline bounds everything else.
const config = { ...run.config, pullTimeoutMs: (run.opts.quick ? 2 : 15) * 60_000 };
const SYSTEMS = ['regmirror', 'reference'];
const PHASES = ['cold', 'warm'];

async function main() {
  const loadStart = loadavg();
  const t0 = Date.now();
  const world = await rolloutUpstream({ work, logs, size: config.size });
  const { upstream, image } = world;
  log(`seeded ${image.blobs.length} blobs (${(image.bytes / MiB).toFixed(0)} MiB); ${config.clients} clients × ${config.parallel} blobs at a time`);

  const runs = Object.fromEntries(SYSTEMS.map((s) => [s, []]));
  for (let rep = 0; rep < config.reps; rep++) {
    // Alternate which goes first, so neither always runs on a machine the other just warmed.
    for (const sys of rep % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse()) {
      const r = await rollout(world, sys, rep);
      runs[sys].push(r);
      for (const phase of PHASES) {
        const p = r[phase];
        log(`${sys} ${phase} rep ${rep}: ${p.seconds.toFixed(1)} s, upstream ${(p.upstreamBytes / image.bytes).toFixed(2)}× the image in ${p.upstreamGets} GETs, ${p.failed} failed pulls, ${p.wrongDigests} wrong bodies`);
      }
    }
  }
  await stopProcess(upstream);
  process.stdout.write(`${report(runs, { loadStart, loadEnd: loadavg(), minutes: (Date.now() - t0) / 60_000, imageBytes: image.bytes, blobs: image.blobs.length })}\n`);
  const failed = bars(runs, image.bytes).filter((b) => !b.met);
  if (failed.length > 0) log(`bars not met: ${failed.map((b) => `${b.label} ${b.value}`).join('; ')}`);
  const broken = SYSTEMS.flatMap((s) => runs[s]).flatMap((r) => PHASES.map((p) => r[p])).filter((p) => p.failed > 0 || p.wrongDigests > 0);
  if (broken.length > 0) throw new Error(`pulls failed or bodies were wrong (first failure: ${broken.find((p) => p.firstFailure)?.firstFailure ?? 'none'})`);
}

/** A fresh `sys` (empty storage): `config.clients` pulls at once cold, then the same again warm. */
async function rollout(world, sys, rep) {
  const name = `${sys}-${rep}`;
  const storage = join(work, name);
  mkdirSync(storage);
  const proc =
    sys === 'reference'
      ? await startDistribution({ name, dir: logs, storage, proxy: world.upstreamUrl })
      : await startRegmirror({
          name,
          dir: logs,
          storage,
          root,
          sections: {
            storage: { path: storage, maxSize: `${Math.ceil((2 * world.imageBytes) / MiB) + 64}MiB`, minFree: '1GiB' },
            // 48 clients on a loaded 2-core machine: a body may pause longer than the 60 s default.
            upstreams: { 'docker.io': { url: world.upstreamUrl, library: true, timeouts: { bodyIdle: '120s' } } },
          },
        });
  try {
    const out = {};
    for (const phase of PHASES) {
      world.upLog.mark();
      const cpu0 = cpuSeconds(proc);
      const clientCpu0 = process.cpuUsage();
      const pulls = await pullMany([`http://${proc.address}`], ROLLOUT_REPO, '1', { clients: config.clients, parallel: config.parallel, timeoutMs: config.pullTimeoutMs });
      const clientCpu = process.cpuUsage(clientCpu0);
      // The reference may still be fetching after its clients got their last byte.
      if (!(await world.upLog.settle())) log(`warning: upstream still busy 60 s after the ${sys} ${phase} pulls`);
      const up = world.upLog.take(AGENTS[sys]);
      out[phase] = {
        seconds: pulls.seconds,
        clientP50: pulls.clientP50,
        clientMax: pulls.clientMax,
        failed: pulls.failures.length,
        firstFailure: pulls.failures[0]?.message,
        wrongDigests: pulls.wrongDigests,
        upstreamBytes: up.blobBytes,
        upstreamGets: up.blobGets,
        upstreamManifests: up.manifestRequests,
        cpu: cpuSeconds(proc) - cpu0,
        clientCpu: (clientCpu.user + clientCpu.system) / 1e6,
      };
      if (out[phase].firstFailure) log(`${sys} ${phase}: ${out[phase].failed} pulls failed, the first: ${out[phase].firstFailure}`);
    }
    out.peakRss = peakRss(proc);
    return out;
  } finally {
    await stopProcess(proc);
    rmSync(storage, { recursive: true, force: true });
  }
}

/** The median over repetitions of `key` in `phase` of `sys` (or of `key` itself when phase is null). */
const med = (runs, sys, phase, key) => median(runs[sys].map((r) => (phase ? r[phase][key] : r[key])));

function bars(runs, imageBytes) {
  const coldWarm = med(runs, 'regmirror', 'cold', 'seconds') / med(runs, 'regmirror', 'warm', 'seconds');
  const up = Math.max(...runs.regmirror.map((r) => r.cold.upstreamBytes + r.warm.upstreamBytes)) / imageBytes;
  const wrong = SYSTEMS.flatMap((s) => runs[s]).reduce((n, r) => n + r.cold.wrongDigests + r.warm.wrongDigests, 0);
  return [
    { label: 'regmirror cold ÷ warm wall time', value: `${coldWarm.toFixed(2)}×`, bar: '≤ 1.3×', met: coldWarm <= 1.3 },
    { label: 'regmirror upstream blob bytes (cold + warm) ÷ image size', value: `${up.toFixed(2)}×`, bar: '1×', met: Math.abs(up - 1) < 1e-9 },
    { label: 'blob bodies with a wrong sha256, both systems', value: String(wrong), bar: '0', met: wrong === 0 },
  ];
}

function report(runs, { loadStart, loadEnd, minutes, imageBytes, blobs }) {
  const la = (l) => l.map((x) => x.toFixed(1)).join(' / ');
  const f = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const cols = SYSTEMS.flatMap((s) => PHASES.map((p) => [s, p]));
  const rows = [
    ['wall time, first request → last verified byte (s)', 'seconds', (v) => f(v)],
    ["one client's pull, median (s)", 'clientP50', (v) => f(v)],
    ["one client's pull, slowest (s)", 'clientMax', (v) => f(v)],
    ['upstream blob bytes ÷ image size', 'upstreamBytes', (v) => `${f(v / imageBytes, 2)}×`],
    ['upstream blob GETs', 'upstreamGets', (v) => f(v, 0)],
    ['upstream manifest requests', 'upstreamManifests', (v) => f(v, 0)],
    ['blob bodies with a wrong sha256', 'wrongDigests', (v) => f(v, 0)],
    ['failed pulls', 'failed', (v) => f(v, 0)],
    ['server CPU (s)', 'cpu', (v) => f(v)],
    // All clients are in this one process: when it needs more than the cores left, it sets the pace.
    ['CPU of the clients (s, hashing every body)', 'clientCpu', (v) => f(v)],
  ];
  const cpu = cpus();
  const lines = [
    `One mirror, ${config.clients} clients at once, each pulling a ${blobs}-blob image of ${f(imageBytes / MiB, 0)} MiB (manifest by tag, then`,
    `${config.parallel} blobs at a time, every body checked by sha256): cold on fresh empty storage, then the same ${config.clients} pulls warm.`,
    `${config.reps} run(s) per system, medians. The reference is distribution in proxy mode.`,
    `${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}; ${f(minutes)} minutes;`,
    `load average (1/5/15 min) ${la(loadStart)} at the start, ${la(loadEnd)} at the end.`,
    '',
    `| measurement | ${cols.map(([s, p]) => `${s} ${p}`).join(' | ')} |`,
    `|---|${cols.map(() => '---').join('|')}|`,
  ];
  for (const [label, key, show] of rows) lines.push(`| ${label} | ${cols.map(([s, p]) => show(med(runs, s, p, key))).join(' | ')} |`);
  // One peak per server over its cold and warm phases, shown under cold.
  lines.push(`| peak RSS of the server, cold + warm (MiB) | ${cols.map(([s, p]) => (p === 'cold' ? f(med(runs, s, null, 'peakRss') / MiB, 0) : '')).join(' | ')} |`);
  const ratio = (a, b) => `${f(a / b, 2)}×`;
  lines.push(
    '',
    '| ratio | value | bar | met |',
    '|---|---|---|---|',
    ...bars(runs, imageBytes).map((b) => `| ${b.label} | ${b.value} | ${b.bar} | ${b.met ? 'yes' : '**no**'} |`),
    `| reference cold ÷ warm wall time | ${ratio(med(runs, 'reference', 'cold', 'seconds'), med(runs, 'reference', 'warm', 'seconds'))} |  |  |`,
    `| regmirror ÷ reference, cold wall time | ${ratio(med(runs, 'regmirror', 'cold', 'seconds'), med(runs, 'reference', 'cold', 'seconds'))} |  |  |`,
    `| regmirror ÷ reference, warm wall time | ${ratio(med(runs, 'regmirror', 'warm', 'seconds'), med(runs, 'reference', 'warm', 'seconds'))} |  |  |`,
    `| regmirror ÷ reference, peak RSS | ${ratio(med(runs, 'regmirror', null, 'peakRss'), med(runs, 'reference', null, 'peakRss'))} |  |  |`,
  );
  return lines.join('\n');
}

exitWhenDone(main(), log);
