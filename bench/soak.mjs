// npm run bench:soak [-- --minutes N] [--clients N] [--skip KIND ...] [--keep]
// Issue 21's soak: regmirror in front of a distribution upstream for N minutes (default 20) of
// mixed load on loopback: warm blob GETs and HEADs, cold pulls of images pushed to the upstream
// while the run goes on, manifest GETs by tag and by digest, 404s, and clients that hang up in the
// middle of a blob (warm or still arriving from the upstream). Bounded: a fixed number of clients,
// a timeout on every request, a bounded number of pushes, and a deadline for the whole run.
// Checks: no valid request fails and no body read to the end has a wrong sha256 (the exit code
// says so); the server's RSS and open fds are sampled every few seconds and the first 5 minutes
// are compared with the last 5. Not in CI and not in `npm run bench`: it is long by design.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MANIFEST_ACCEPT } from './lib/clients.mjs';
import { pullImage } from './lib/image-pull.mjs';
import { rss } from './lib/load.mjs';
import { cpuSeconds, startDistribution, startRegmirror, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { benchRun, exitWhenDone } from './lib/run.mjs';
import { pushImage, randomBlob } from './lib/seed.mjs';

const MiB = 1024 * 1024;
const KiB = 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '20' },
    clients: { type: 'string', default: '8' },
    // Leave a kind of request out (e.g. notFound), to see which one a trend in RSS comes from.
    skip: { type: 'string', multiple: true, default: [] },
    keep: { type: 'boolean', default: false },
  },
});
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, Number(v)));
const config = {
  minutes: clamp(opts.minutes, 0.5, 180),
  clients: Math.floor(clamp(opts.clients, 1, 64)),
  sampleMs: 5_000,
  // A fresh image reaches the upstream this often; each is a few MiB, so a 20-minute run adds ~0.5 GiB.
  pushEveryMs: 10_000,
  // Between two requests of one client: mixed load, not a saturation test on a shared 2-core machine.
  pauseMs: 100,
  idleMs: 30_000,
  requestMs: 120_000,
};
// The first and last windows compared; 5 minutes in a full run.
const windowMs = Math.min(5, config.minutes / 2) * 60_000;
const runMs = config.minutes * 60_000;
const WARM_LAYERS = [8 * MiB, 2 * MiB, 512 * KiB, 64 * KiB];
const WEIGHTS = { warmBlob: 20, headBlob: 5, tag: 15, digest: 15, cold: 15, notFound: 10, disconnect: 10 };
for (const kind of opts.skip) {
  if (!(kind in WEIGHTS)) throw new Error(`--skip ${kind}: not one of ${Object.keys(WEIGHTS).join(', ')}`);
  WEIGHTS[kind] = 0;
}

const { work, log } = benchRun('soak', { keep: opts.keep, deadlineMinutes: config.minutes + 10 });
const logs = join(work, 'logs');
mkdirSync(logs);

const stats = Object.fromEntries(Object.keys(WEIGHTS).map((k) => [k, { ok: 0, failed: 0 }]));
const errors = [];
let wrongDigests = 0;
let bytesRead = 0;
let coldFirstPulls = 0;
let coldHangups = 0;

function fail(kind, message) {
  stats[kind].failed += 1;
  if (errors.length < 20) errors.push(`${kind}: ${message}`);
}

/**
 * One request with an idle timeout and an overall one. Reads the body through sha256 unless
 * `cutAfter` is given: then it hangs up once that many bytes arrived (the disconnecting client).
 */
function get(base, path, { agent, method = 'GET', headers = {}, cutAfter }) {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { agent, method, headers }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (cutAfter !== undefined && bytes >= cutAfter) {
          // Destroying the socket, not just the response, is what a killed client looks like.
          req.destroy();
          resolve({ status: res.statusCode, bytes, cut: true });
        }
      });
      res.once('end', () => {
        if (!res.complete) reject(new Error(`${method} ${path}: body cut short after ${bytes} bytes`));
        else resolve({ status: res.statusCode, headers: res.headers, bytes, digest: `sha256:${hash.digest('hex')}` });
      });
      res.once('error', (err) => (cutAfter !== undefined && bytes >= cutAfter ? undefined : reject(err)));
    });
    const overall = setTimeout(() => req.destroy(new Error(`${method} ${path}: over ${config.requestMs} ms`)), config.requestMs);
    req.once('close', () => clearTimeout(overall));
    req.setTimeout(config.idleMs, () => req.destroy(new Error(`${method} ${path}: nothing for ${config.idleMs} ms`)));
    req.once('error', (err) => reject(err));
    req.end();
  });
}

const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
function pickKind() {
  let r = Math.random() * total;
  for (const [k, w] of Object.entries(WEIGHTS)) if ((r -= w) < 0) return k;
  return 'warmBlob';
}

/** What a client does once, checked. Throws on a failure of a valid request. */
async function act(kind, world, agent) {
  const { base, warm, fresh } = world;
  const images = [warm, ...fresh.filter((f) => f.pulled)];
  switch (kind) {
    case 'warmBlob': {
      const blob = pick(warm.blobs);
      const r = await get(base, `/v2/${warm.repo}/blobs/${blob.digest}`, { agent });
      if (r.status !== 200 || r.bytes !== blob.size) throw new Error(`blob ${blob.digest}: ${r.status}, ${r.bytes} of ${blob.size} bytes`);
      return checkDigest(r, blob.digest);
    }
    case 'headBlob': {
      const blob = pick(warm.blobs);
      const r = await get(base, `/v2/${warm.repo}/blobs/${blob.digest}`, { agent, method: 'HEAD' });
      if (r.status !== 200 || Number(r.headers['content-length']) !== blob.size) throw new Error(`HEAD ${blob.digest}: ${r.status}, length ${r.headers['content-length']}`);
      return undefined;
    }
    case 'tag':
    case 'digest': {
      const image = pick(images);
      const ref = kind === 'tag' ? image.tag : image.manifestDigest;
      const r = await get(base, `/v2/${image.repo}/manifests/${ref}`, { agent, headers: { Accept: MANIFEST_ACCEPT } });
      if (r.status !== 200) throw new Error(`manifest ${image.repo}:${ref}: ${r.status}`);
      // Tags never move in this run, so the body by tag must be the pushed manifest too.
      return checkDigest(r, image.manifestDigest);
    }
    case 'cold': {
      // The newest image nobody pulled yet (its blobs are cold in the mirror), else a recent one,
      // which other clients may still be pulling: followers of an in-flight download.
      const next = fresh.find((f) => !f.pulled);
      const image = next ?? pick(fresh.slice(-3));
      if (!image) return act('warmBlob', world, agent);
      if (next) {
        next.pulled = true;
        coldFirstPulls += 1;
      }
      const r = await pullImage(base, image.repo, image.tag, { parallel: 2, idleMs: config.idleMs, timeoutMs: config.requestMs });
      wrongDigests += r.wrongDigests;
      bytesRead += r.bytes;
      return undefined;
    }
    case 'notFound': {
      const paths = [
        `/v2/${warm.repo}/blobs/sha256:${randomBytes(32).toString('hex')}`,
        `/v2/${warm.repo}/manifests/missing-${randomBytes(4).toString('hex')}`,
        `/v2/library/soak-absent-${randomBytes(4).toString('hex')}/manifests/1`,
      ];
      const path = pick(paths);
      const r = await get(base, path, { agent, headers: { Accept: MANIFEST_ACCEPT } });
      if (r.status !== 404) throw new Error(`${path}: ${r.status}, not 404`);
      return undefined;
    }
    case 'disconnect': {
      // Half the time a blob of an image nobody pulled yet (the hang-up leaves the mirror mid-fetch
      // from the upstream; the next pull of it must still get every byte right), else of the newest.
      const cold = fresh.find((f) => !f.pulled);
      const image = Math.random() < 0.5 && fresh.length > 0 ? (cold ?? fresh[fresh.length - 1]) : warm;
      if (image === cold) coldHangups += 1;
      const blob = image.blobs.reduce((a, b) => (b.size > a.size ? b : a));
      const r = await get(base, `/v2/${image.repo}/blobs/${blob.digest}`, { agent: false, cutAfter: Math.max(1, Math.floor(blob.size / 3)) });
      if (r.status !== 200) throw new Error(`blob ${blob.digest} before the hang-up: ${r.status}`);
      return undefined;
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

function checkDigest(r, want) {
  bytesRead += r.bytes;
  if (r.digest !== want) {
    wrongDigests += 1;
    if (errors.length < 20) errors.push(`wrong body: got ${r.digest}, want ${want}`);
  }
}

async function client(world, until) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    while (Date.now() < until) {
      const kind = pickKind();
      try {
        await act(kind, world, agent);
        stats[kind].ok += 1;
      } catch (err) {
        fail(kind, err.message);
      }
      await sleep(config.pauseMs);
    }
  } finally {
    agent.destroy();
  }
}

/** Pushes a fresh image of 3 small random layers every `pushEveryMs` until `until`; a bounded number. */
async function pusher(world, until) {
  for (let n = 0; Date.now() < until && n < Math.ceil(runMs / config.pushEveryMs); n++) {
    const sizes = [32 * KiB + Math.floor(Math.random() * 256 * KiB), MiB + Math.floor(Math.random() * MiB), 2 * MiB + Math.floor(Math.random() * 4 * MiB)];
    const repo = `library/soak-fresh-${n % 8}`;
    const tag = `t${n}`;
    try {
      const image = await pushImage(world.upstreamUrl, repo, tag, sizes.map(randomBlob));
      world.fresh.push({ ...image, pulled: false });
    } catch (err) {
      // The upstream failing a push is not the mirror's fault; say so and go on.
      log(`push ${repo}:${tag} failed: ${err.message}`);
    }
    await sleep(Math.max(0, Math.min(config.pushEveryMs, until - Date.now())));
  }
}

function sampler(proc, samples, t0) {
  const take = () => {
    try {
      samples.push({ at: Date.now() - t0, rss: rss(proc.pid).now, fds: readdirSync(`/proc/${proc.pid}/fd`).length });
    } catch (err) {
      log(`sample failed: ${err.message}`);
    }
  };
  take();
  return { timer: setInterval(take, config.sampleMs), take };
}

async function main() {
  const loadStart = loadavg();
  const upstream = await startDistribution({ name: 'upstream', dir: logs, storage: join(work, 'upstream-storage') });
  const upstreamUrl = `http://${upstream.address}`;
  const warm = await pushImage(upstreamUrl, 'library/soak-warm', '1', WARM_LAYERS.map(randomBlob));
  const storage = join(work, 'mirror');
  mkdirSync(storage);
  const mirror = await startRegmirror({
    name: 'regmirror',
    dir: logs,
    storage,
    root,
    sections: {
      storage: { path: storage, maxSize: '8GiB', minFree: '2GiB' },
      upstreams: { 'docker.io': { url: upstreamUrl, library: true } },
      // Short, so tag GETs keep revalidating against the upstream during the run.
      manifestTTL: '30s',
    },
  });
  const base = `http://${mirror.address}`;
  const world = { base, upstreamUrl, warm, fresh: [] };
  const first = await pullImage(base, warm.repo, warm.tag);
  if (first.wrongDigests > 0) throw new Error('the first pull of the warm image had a wrong body');
  log(`regmirror ${mirror.address} (pid ${mirror.pid}); ${config.clients} clients for ${config.minutes} minutes; windows of ${windowMs / 60_000} minutes`);

  const t0 = Date.now();
  const until = t0 + runMs;
  const samples = [];
  const cpu0 = cpuSeconds(mirror);
  const s = sampler(mirror, samples, t0);
  const progress = setInterval(() => {
    const last = samples[samples.length - 1];
    const n = Object.values(stats).reduce((a, x) => a + x.ok + x.failed, 0);
    log(`${n} requests, ${errors.length} errors, ${wrongDigests} wrong bodies, ${world.fresh.length} images pushed; rss ${(last.rss / MiB).toFixed(0)} MiB, ${last.fds} fds`);
  }, 60_000);
  try {
    await Promise.all([pusher(world, until), ...Array.from({ length: config.clients }, () => client(world, until))]);
  } finally {
    clearInterval(s.timer);
    clearInterval(progress);
  }
  // Once every client is done: a server that leaks shows it here, with nothing in flight.
  await sleep(2_000);
  s.take();
  const cpu = cpuSeconds(mirror) - cpu0;
  const peak = rss(mirror.pid).peak;
  await stopProcess(mirror);
  await stopProcess(upstream);
  const summary = report({ samples, cpu, peak, loadStart, loadEnd: loadavg(), seconds: (Date.now() - t0) / 1000, world });
  process.stdout.write(`${summary.text}\n`);
  const failed = Object.values(stats).reduce((a, x) => a + x.failed, 0);
  if (failed > 0 || wrongDigests > 0) throw new Error(`${failed} valid requests failed, ${wrongDigests} bodies had a wrong sha256; first: ${errors.slice(0, 5).join(' | ')}`);
}

/** Least-squares slope of RSS over the run, MiB per minute: a slow creep the window medians may hide. */
function rssSlope(samples) {
  const xs = samples.map((x) => x.at / 60_000);
  const ys = samples.map((x) => x.rss / MiB);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return sxx > 0 ? sxy / sxx : 0;
}

function stat(xs) {
  return { min: Math.min(...xs), median: median(xs), max: Math.max(...xs) };
}

function report({ samples, cpu, peak, loadStart, loadEnd, seconds, world }) {
  const firstW = samples.filter((x) => x.at <= windowMs);
  const lastW = samples.filter((x) => x.at >= runMs - windowMs);
  const rssFirst = stat(firstW.map((x) => x.rss));
  const rssLast = stat(lastW.map((x) => x.rss));
  const fdFirst = stat(firstW.map((x) => x.fds));
  const fdLast = stat(lastW.map((x) => x.fds));
  const rssFlat = Math.abs(rssLast.median / rssFirst.median - 1) <= 0.1;
  // Open sockets move with what is in flight at the moment of a sample; a leak grows past that.
  const fdFlat = fdLast.median <= fdFirst.median * 1.1 + 2 && fdLast.max <= fdFirst.max + config.clients;
  const end = samples[samples.length - 1];
  const la = (l) => l.map((x) => x.toFixed(1)).join(' / ');
  const m = (v) => (v / MiB).toFixed(1);
  const requests = Object.values(stats).reduce((a, x) => a + x.ok + x.failed, 0);
  const failed = Object.values(stats).reduce((a, x) => a + x.failed, 0);
  const lines = [
    `Soak: ${(seconds / 60).toFixed(1)} minutes, ${config.clients} clients (${config.pauseMs} ms between requests), regmirror in front of distribution on loopback;`,
    `load average (1/5/15 min) ${la(loadStart)} at the start, ${la(loadEnd)} at the end.`,
    '',
    '| request | ok | failed |',
    '|---|---|---|',
    ...Object.entries(stats).map(([k, x]) => `| ${k} | ${x.ok} | ${x.failed} |`),
    `| all | ${requests - failed} | ${failed} |`,
    '',
    `Bodies read to the end and hashed: ${(bytesRead / MiB).toFixed(0)} MiB, ${wrongDigests} with a wrong sha256. Images pushed during the run: ${world.fresh.length}, ${coldFirstPulls} pulled cold; ${coldHangups} hang-ups mid-blob on an image not yet pulled.`,
    `Server CPU ${cpu.toFixed(1)} s; peak RSS (VmHWM) ${m(peak)} MiB; ${samples.length} samples every ${config.sampleMs / 1000} s.`,
    '',
    `| server | first ${windowMs / 60_000} min (min / median / max) | last ${windowMs / 60_000} min (min / median / max) | last ÷ first median | flat |`,
    '|---|---|---|---|---|',
    `| RSS (MiB) | ${m(rssFirst.min)} / ${m(rssFirst.median)} / ${m(rssFirst.max)} | ${m(rssLast.min)} / ${m(rssLast.median)} / ${m(rssLast.max)} | ${(rssLast.median / rssFirst.median).toFixed(2)}× | ${rssFlat ? 'yes' : '**no**'} (within 10%) |`,
    `| open fds | ${fdFirst.min} / ${fdFirst.median} / ${fdFirst.max} | ${fdLast.min} / ${fdLast.median} / ${fdLast.max} | ${(fdLast.median / fdFirst.median).toFixed(2)}× | ${fdFlat ? 'yes' : '**no**'} (not growing) |`,
    '',
    `RSS trend over the whole run (least squares): ${rssSlope(samples).toFixed(2)} MiB per minute. After the clients stopped: RSS ${m(end.rss)} MiB, ${end.fds} fds.`,
  ];
  if (errors.length > 0) lines.push('', 'First errors:', ...errors.map((e) => `- ${e}`));
  return { text: lines.join('\n'), rssFlat, fdFlat };
}

exitWhenDone(main(), log);
