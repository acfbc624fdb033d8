// npm run bench:memory   (or node bench/memory.mjs [--size MiB] [--stall-seconds N] [--only SYS,...] [--baseline DIR] [--skip cold,stalled,load] [--settle-seconds N] after npm run build)
// Memory per client: regmirror's RSS (sampled every 100 ms) against the reference's, side by side,
// in three cases: 64 simultaneous cold GETs of one large blob (fresh storage), 100 connections that
// request the cached blob and read nothing for a while, and the 200-client mixed load of
// bench/connections.mjs. Then the idle RSS a few seconds after each, against the idle RSS before.
// Targets: peak ≤ 200 MiB in each case; idle afterwards within 10% of idle before.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { concurrentGets, curlGet } from './lib/clients.mjs';
import { mixedWorkload, rss, runLoad } from './lib/load.mjs';
import { startDistribution, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';
import { UpstreamLog, AGENTS } from './lib/upstream-log.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    followers: { type: 'string', default: '64' },
    stalled: { type: 'string', default: '100' },
    'stall-seconds': { type: 'string', default: '10' },
    'load-seconds': { type: 'string', default: '10' },
    'settle-seconds': { type: 'string', default: '10' },
    only: { type: 'string' },
    skip: { type: 'string', default: '' },
    baseline: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const size = Math.max(1, Math.min(2048, Number(values.size))) * MiB;
const followers = Math.max(1, Math.min(200, Number(values.followers)));
const stalledCount = Math.max(1, Math.min(500, Number(values.stalled)));
const stallSeconds = Math.max(1, Math.min(120, Number(values['stall-seconds'])));
const settleSeconds = Math.max(1, Math.min(120, Number(values['settle-seconds'])));
const skip = new Set(values.skip.split(',').filter(Boolean));
const work = mkdtempSync(join(tmpdir(), 'regmirror-memory-'));
process.on('exit', () => {
  stopAllSync();
  if (!values.keep) rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => process.exit(3), 40 * 60_000).unref();
const log = (m) => process.stderr.write(`[memory] ${m}\n`);
const loadStart = loadavg();
const mib = (b) => (b / MiB).toFixed(0);

const layer = randomBlobFile(join(work, 'big.layer'), size);
const small = randomBlobFile(join(work, 'small.layer'), 256 * 1024);
const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'up') });
const upstreamUrl = `http://${upstream.address}`;
const upLog = new UpstreamLog(upstream);
await pushImage(upstreamUrl, 'library/bench-big', '1', [layer]);
const image = await pushImage(upstreamUrl, 'library/bench-conn', '1', [small]);
const blobPath = `/v2/library/bench-big/blobs/${layer.digest}`;
const workload = mixedWorkload(image);

let n = 0;
const start = (sys) => {
  const name = `${sys}-${++n}`;
  const storage = join(work, name);
  mkdirSync(storage);
  if (sys === 'reference') return startDistribution({ name, dir: work, storage, proxy: upstreamUrl });
  return startRegmirror({ name, dir: work, storage, upstream: upstreamUrl, root: sys === 'baseline' ? resolve(values.baseline) : root });
};

/**
 * Samples VmRSS every 100 ms while `body` runs; its peak, and the idle RSS `settleMs` before and after
 * (V8 shrinks its heap, and regmirror collects once idle, some seconds after the last transfer).
 */
async function measure(proc, body, settleMs = settleSeconds * 1000) {
  // Idle, but past its first requests: code loaded and compiled, as any mirror that served once.
  // Idle is measured the same way before and after: the warm-up's own transfers leave garbage and
  // malloc's working set for a few seconds too (1 s after them, RSS was 77-115 MiB, run to run).
  for (const m of workload.mix) if (m.method === 'GET') await (await fetch(`http://${proc.address}${m.path}`, { headers: m.headers })).arrayBuffer();
  await sleep(settleMs);
  const before = rss(proc.pid).now;
  let peak = before;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(proc.pid).now);
    } catch {
      // exited
    }
  }, 100);
  let extra;
  try {
    extra = await body();
  } finally {
    clearInterval(timer);
  }
  await sleep(settleMs);
  const after = rss(proc.pid).now;
  return { before, peak: Math.max(peak, rss(proc.pid).now), after, ...extra };
}

/** `count` connections that send a GET for `path` and never read; closed after `seconds`. */
async function stalledReaders(address, path, count, seconds) {
  const [host, port] = address.split(':');
  const socks = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const s = connect({ host, port: Number(port) }, () => {
            s.pause();
            s.write(`GET ${path} HTTP/1.1\r\nHost: ${address}\r\n\r\n`);
            resolve(s);
          });
          s.once('error', reject);
        }),
    ),
  );
  await sleep(seconds * 1000);
  for (const s of socks) s.destroy();
}

const systems = values.only ? values.only.split(',') : values.baseline ? ['regmirror', 'reference', 'baseline'] : ['regmirror', 'reference'];
const results = Object.fromEntries(systems.map((s) => [s, {}]));
for (const sys of systems) {
  if (!skip.has('cold')) {
    const p = await start(sys);
    results[sys].cold = await measure(p, async () => {
      // After measure's warm-up GETs (of other blobs): only the cold blob's GETs count.
      upLog.mark();
      const { seconds } = await concurrentGets(`http://${p.address}${blobPath}`, size, followers);
      return { seconds };
    });
    await upLog.settle();
    results[sys].cold.upstreamGets = upLog.take(AGENTS[sys === 'baseline' ? 'regmirror' : sys]).blobGets;
    await stopProcess(p);
    log(`${sys} cold ×${followers}: ${JSON.stringify(results[sys].cold)}`);
  }
  if (!skip.has('stalled') || !skip.has('load')) {
    const p = await start(sys);
    await curlGet(`http://${p.address}${blobPath}`, size);
    if (!skip.has('stalled')) {
      results[sys].stalled = await measure(p, () => stalledReaders(p.address, blobPath, stalledCount, stallSeconds));
      log(`${sys} stalled ×${stalledCount}: ${JSON.stringify(results[sys].stalled)}`);
    }
    if (!skip.has('load')) {
      results[sys].load = await measure(p, async () => {
        const r = await runLoad(p.address, [p.pid], { clients: 200, seconds: Number(values['load-seconds']), workload, thinkMs: 200 });
        return { rps: r.rps, errors: r.errors + r.badStatus };
      });
      log(`${sys} load: ${JSON.stringify(results[sys].load)}`);
    }
    await stopProcess(p);
  }
}
await stopProcess(upstream);

const la = loadavg();
let out = `\n${mib(size)} MiB blob, ${followers} cold followers, ${stalledCount} readers stalled ${stallSeconds} s, 200-client load ${values['load-seconds']} s; load average ${loadStart.map((x) => x.toFixed(1)).join('/')} → ${la.map((x) => x.toFixed(1)).join('/')}\n\n`;
out += `| case | ${systems.map((s) => `${s}: idle before → peak → idle after (MiB)`).join(' | ')} |\n|---|${systems.map(() => '---|').join('')}\n`;
for (const c of ['cold', 'stalled', 'load']) {
  if (skip.has(c)) continue;
  out += `| ${c} | ${systems.map((s) => {
    const r = results[s][c];
    const extra = c === 'cold' ? `; ${r.seconds.toFixed(1)} s, ${r.upstreamGets} upstream GETs` : c === 'load' ? `; ${r.rps.toFixed(0)} req/s` : '';
    return `${mib(r.before)} → **${mib(r.peak)}** → ${mib(r.after)} (${((r.after / r.before - 1) * 100).toFixed(0)}%)${extra}`;
  }).join(' | ')} |\n`;
}
process.stdout.write(out);
process.exit(0);
