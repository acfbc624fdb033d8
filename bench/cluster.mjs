// npm run bench:cluster [-- --quick] [--reps N] [--size MiB] [--clients N] [--parallel N] [--independent-redis] [--keep]
// The rollout scenario of issue 20: a new multi-layer image pulled cold by 48 nodes through three
// replicas, once as a cluster (shared Redis metadata, `cluster.peers`: one owner per blob, peers
// fill each other) and once as three independent replicas (each its own storage and, unless
// --independent-redis, its own embedded metadata: a mirror per replica as before `cluster`).
// Bars: the cluster costs the upstream 1× the image's bytes (the independent replicas 3×), and its
// wall time is no worse than 1.2× the independent replicas'. Every body is checked by sha256.
import { mkdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { exitWhenDone } from './lib/run.mjs';
import { ROLLOUT_REPO, rolloutRun, rolloutUpstream } from './lib/rollout.mjs';
import { pullMany } from './lib/image-pull.mjs';
import { cpuSeconds, freePorts, peakRss, startRedis, startRegmirror, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { AGENTS } from './lib/upstream-log.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const run = rolloutRun('cluster', { extra: { 'independent-redis': { type: 'boolean', default: false } }, deadlineMinutes: 40 });
const { work, logs, log } = run;
const config = { ...run.config, replicas: 3, independentRedis: run.opts['independent-redis'] };
const SECRET = 'regmirror-bench-cluster-secret-0123456789';
const MODES = ['cluster', 'independent'];

async function main() {
  const loadStart = loadavg();
  const t0 = Date.now();
  const { upstream, upstreamUrl, upLog, image, imageBytes } = await rolloutUpstream({ work, logs, size: config.size });
  const [redisPort] = await freePorts(1);
  const redisDir = join(work, 'redis');
  mkdirSync(redisDir);
  const redis = await startRedis({ name: 'redis', dir: redisDir, port: redisPort });
  const world = { upstream, upstreamUrl, upLog, redisUrl: `redis://${redis.address}`, imageBytes };
  log(`seeded ${image.blobs.length} blobs (${(imageBytes / MiB).toFixed(0)} MiB); redis on ${redis.address}; ${config.clients} clients × ${config.parallel} blobs at a time`);

  const runs = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let rep = 0; rep < config.reps; rep++) {
    // Alternate which goes first, so neither always runs on a machine the other just warmed.
    for (const mode of rep % 2 === 0 ? MODES : [...MODES].reverse()) {
      const r = await rollout(world, mode, rep);
      runs[mode].push(r);
      log(`${mode} rep ${rep}: ${r.seconds.toFixed(1)} s, upstream ${(r.upstreamBytes / imageBytes).toFixed(2)}× the image in ${r.upstreamGets} GETs, from peers ${(r.peerBytes / MiB).toFixed(0)} MiB, fallbacks ${r.fallbacks}`);
    }
  }
  await stopProcess(redis);
  await stopProcess(upstream);
  process.stdout.write(`${report(runs, { loadStart, loadEnd: loadavg(), minutes: (Date.now() - t0) / 60_000, imageBytes, blobs: image.blobs.length })}\n`);
  const failed = bars(runs, imageBytes).filter((b) => !b.met);
  if (failed.length > 0) log(`bars not met: ${failed.map((b) => b.label).join('; ')}`);
}

/** Three fresh replicas (empty storage) of `mode`, `config.clients` cold pulls spread over them, and what it cost. */
async function rollout(world, mode, rep) {
  const ports = await freePorts(config.replicas);
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const shared = mode === 'cluster' || config.independentRedis;
  const metadata = shared ? { metadata: world.redisUrl, metadataNamespace: `bench-${mode}-${rep}` } : {};
  const replicas = await Promise.all(
    urls.map(async (url, i) => {
      const name = `${mode}-${rep}-${i}`;
      const storage = join(work, name);
      mkdirSync(storage);
      const proc = await startRegmirror({
        name,
        dir: logs,
        storage,
        root,
        sections: {
          listen: `127.0.0.1:${ports[i]}`,
          storage: { path: storage, maxSize: `${Math.ceil((2 * world.imageBytes) / MiB) + 64}MiB`, minFree: '1GiB', ...metadata },
          // 48 clients on a loaded 2-core machine: a body may pause longer than the 60 s default.
          upstreams: { 'docker.io': { url: world.upstreamUrl, library: true, timeouts: { bodyIdle: '120s' } } },
          ...(mode === 'cluster' ? { cluster: { peers: urls, self: url, secret: SECRET, probeInterval: '1s' } } : {}),
        },
      });
      return { name, url, proc, storage };
    }),
  );
  try {
    await Promise.all(replicas.map((r) => ready(r, mode === 'cluster' ? config.replicas : 0)));
    world.upLog.mark();
    const cpu0 = replicas.map((r) => cpuSeconds(r.proc));
    const upCpu0 = cpuSeconds(world.upstream);
    const clientCpu0 = process.cpuUsage();
    const pulls = await pullMany(
      replicas.map((r) => r.url),
      ROLLOUT_REPO,
      '1',
      { clients: config.clients, parallel: config.parallel },
    );
    const clientCpu = process.cpuUsage(clientCpu0);
    if (pulls.failures.length > 0) throw new Error(`${mode}: ${pulls.failures.length} of ${config.clients} pulls failed: ${pulls.failures[0].message}`);
    if (pulls.wrongDigests > 0) throw new Error(`${mode}: ${pulls.wrongDigests} blob bodies with a wrong sha256`);
    if (!(await world.upLog.settle())) log(`warning: upstream still busy 60 s after the ${mode} pulls`);
    const up = world.upLog.take(AGENTS.regmirror);
    const metrics = await Promise.all(replicas.map((r) => clusterCounters(r.url)));
    const sum = (f) => metrics.reduce((n, m) => n + f(m), 0);
    return {
      seconds: pulls.seconds,
      clientP50: pulls.clientP50,
      clientMax: pulls.clientMax,
      upstreamBytes: up.blobBytes,
      upstreamGets: up.blobGets,
      upstreamManifests: up.manifestRequests,
      peerBytes: sum((m) => m.peerBytes),
      peerHits: sum((m) => m.peerHits),
      peerMisses: sum((m) => m.peerMisses),
      forwarded: sum((m) => m.forwarded),
      fallbacks: sum((m) => m.fallbacks),
      peakRss: Math.max(...replicas.map((r) => peakRss(r.proc))),
      replicaCpu: replicas.reduce((n, r, i) => n + cpuSeconds(r.proc) - cpu0[i], 0),
      upstreamCpu: cpuSeconds(world.upstream) - upCpu0,
      clientCpu: (clientCpu.user + clientCpu.system) / 1e6,
    };
  } finally {
    for (const r of replicas) await stopProcess(r.proc);
    for (const r of replicas) rmSync(r.storage, { recursive: true, force: true });
  }
}

/** Bounded wait for /readyz, and with a cluster until /api/status lists `members` live members. */
async function ready(replica, members) {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${replica.url}/${members ? 'api/status' : 'readyz'}`);
      const body = await res.text();
      last = `${res.status} ${body.slice(0, 300)}`;
      if (res.status === 200 && (!members || JSON.parse(body).cluster?.members?.filter((m) => m.live).length === members)) return;
    } catch (err) {
      last = err.message;
    }
    await sleep(200);
  }
  throw new Error(`${replica.name} not ready${members ? ` with ${members} live members` : ''} after 60 s: ${last}`);
}

/** This replica's cluster counters from /metrics (all 0 without `cluster`). */
async function clusterCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name, label) => {
    let n = 0;
    for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) if (label === undefined || m[1].includes(label)) n += Number(m[2]);
    return n;
  };
  return {
    peerBytes: value('regmirror_cluster_blob_bytes_total', 'from="peer"'),
    peerHits: value('regmirror_cluster_peer_fetches_total', 'outcome="hit"'),
    peerMisses: value('regmirror_cluster_peer_fetches_total', 'outcome="miss"'),
    forwarded: value('regmirror_cluster_forwarded_requests_total', 'outcome="ok"'),
    fallbacks: value('regmirror_cluster_fallbacks_total'),
  };
}

const med = (runs, mode, key) => median(runs[mode].map((r) => r[key]));

function bars(runs, imageBytes) {
  const wall = med(runs, 'cluster', 'seconds') / med(runs, 'independent', 'seconds');
  const upRatio = med(runs, 'cluster', 'upstreamBytes') / imageBytes;
  return [
    { label: `cluster upstream bytes = 1× the image (${upRatio.toFixed(2)}×)`, met: Math.abs(upRatio - 1) < 0.001 },
    { label: `cluster wall time ≤ 1.2× independent (${wall.toFixed(2)}×)`, met: wall <= 1.2 },
  ];
}

function report(runs, { loadStart, loadEnd, minutes, imageBytes, blobs }) {
  const la = (l) => l.map((x) => x.toFixed(1)).join(' / ');
  const f = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const rows = [
    ['wall time, first request → last verified byte (s)', 'seconds', (v) => f(v), '≤ 1.2×', (c, i) => c / i <= 1.2],
    ['one client\'s pull, median (s)', 'clientP50', (v) => f(v)],
    ['one client\'s pull, slowest (s)', 'clientMax', (v) => f(v)],
    ['upstream blob bytes ÷ image size', 'upstreamBytes', (v) => `${f(v / imageBytes, 2)}×`, 'cluster 1×', (c) => Math.abs(c / imageBytes - 1) < 0.001],
    ['upstream blob GETs', 'upstreamGets', (v) => f(v, 0)],
    ['upstream manifest requests', 'upstreamManifests', (v) => f(v, 0)],
    ['bytes replicas took from peers ÷ image size', 'peerBytes', (v) => `${f(v / imageBytes, 2)}×`],
    ['peer fetches: hit / miss', 'peerHits', (v, mode) => `${f(v, 0)} / ${f(med(runs, mode, 'peerMisses'), 0)}`],
    ['peers\' requests served (forwarded)', 'forwarded', (v) => f(v, 0)],
    ['fallbacks to the upstream', 'fallbacks', (v) => f(v, 0)],
    ['peak RSS, largest replica (MiB)', 'peakRss', (v) => f(v / MiB, 0)],
    ['CPU of the three replicas (s)', 'replicaCpu', (v) => f(v)],
    ['CPU of the upstream (s)', 'upstreamCpu', (v) => f(v)],
    ['CPU of the clients (s, hashing every body)', 'clientCpu', (v) => f(v)],
  ];
  const cpu = cpus();
  const lines = [
    `${config.replicas} replicas, ${config.clients} clients (client i pulls from replica i mod ${config.replicas}), each pulling a ${blobs}-blob image of ${f(imageBytes / MiB, 0)} MiB cold`,
    `(manifest by tag, then ${config.parallel} blobs at a time, every body checked by sha256); ${config.reps} run(s) per mode, medians.`,
    `Cluster: shared Redis metadata, \`cluster.peers\` listing all three. Independent: no \`cluster\`, separate storage, ${config.independentRedis ? 'the same Redis (own namespace)' : 'embedded metadata (no Redis)'}.`,
    `${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}; ${f(minutes)} minutes;`,
    `load average (1/5/15 min) ${la(loadStart)} at the start, ${la(loadEnd)} at the end.`,
    '',
    '| measurement | cluster | independent | cluster ÷ independent | bar | met |',
    '|---|---|---|---|---|---|',
  ];
  for (const [label, key, show, bar, pass] of rows) {
    const c = med(runs, 'cluster', key);
    const i = med(runs, 'independent', key);
    const ratio = i > 0 ? `${f(c / i, 2)}×` : '';
    lines.push(`| ${label} | ${show(c, 'cluster')} | ${show(i, 'independent')} | ${ratio} | ${bar ?? ''} | ${bar ? (pass(c, i) ? 'yes' : '**no**') : ''} |`);
  }
  return lines.join('\n');
}

exitWhenDone(main(), log);
