// npm run bench:wan [-- --quick] [--reps N] [--size MiB] [--rate 1gbit] [--profile] [--keep]   (as root)
// The WAN-shaped case of issue 21: the upstream (a distribution registry seeded through the push
// API) in its own network namespace behind a veth pair with a tc tbf rate limit, so the link, not
// the CPU, is what a cold pull waits for. Cold blob (curl) and cold image pull (skopeo), each on
// fresh empty storage, three ways in one run (order rotated every repetition): directly from the
// upstream over the link, through regmirror (dist/, the `npm start` flags) and through the
// reference (distribution in proxy mode). Prints a markdown table of medians and ratios; with
// --profile, regmirror runs under --cpu-prof and a summary of its cold-blob profiles follows.
// Without permission to create a network namespace it prints one line and exits 0.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { curlGet, skopeoCopy, skopeoEnv, toolVersion } from './lib/clients.mjs';
import { cpuSeconds, schedSeconds, startDistribution, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { benchRun, exitWhenDone } from './lib/run.mjs';
import { makeLayers, pushImage } from './lib/seed.mjs';
import { UpstreamLog } from './lib/upstream-log.mjs';
import { cleanLeftovers, WanLink } from './lib/wan-link.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    size: { type: 'string' },
    rate: { type: 'string', default: '1gbit' },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
if (!/^\d+(\.\d+)?[kmg]?bit$/.test(opts.rate)) {
  process.stderr.write(`--rate must be a tc rate such as 1gbit or 500mbit, not ${opts.rate}\n`);
  process.exit(2);
}
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, Math.floor(Number(v))));
const config = opts.quick
  ? { reps: 1, bigSize: 16 * MiB, multi: [4, 2, 1].map((n) => n * MiB) }
  : { reps: 3, bigSize: 512 * MiB, multi: [128, 64, 32, 16, 8, 4, 2, 1].map((n) => n * MiB) };
if (opts.reps) config.reps = clamp(opts.reps, 1, 20);
if (opts.size) config.bigSize = clamp(opts.size, 1, 4096) * MiB;
// burst: 256 KiB is 2 ms at 1 Gbit/s, above the 64 KiB GSO packets a veth hands tbf and the
// rate ÷ HZ a tbf needs; latency: a 25 ms queue (about 3 MiB at 1 Gbit/s) before tbf drops.
const SHAPE = { rate: opts.rate, burst: '256kb', latency: '25ms' };
const SYSTEMS = ['direct', 'regmirror', 'reference'];
/** Rotated every repetition, so each system runs first, second and third equally often. */
const order = (rep) => SYSTEMS.map((_, i) => SYSTEMS[(i + rep) % SYSTEMS.length]);

// The link first: without it there is nothing to measure, and a run that may not create a
// namespace says so in one line and succeeds (CI as root runs it; a developer's shell may not).
// Only root can remove what a killed earlier run left (and a reused PID would collide with it).
if (process.getuid?.() === 0) {
  for (const name of cleanLeftovers()) process.stderr.write(`[wan bench] removed ${name}, left by an earlier run that no longer runs\n`);
}
const link = new WanLink(SHAPE);
const { work, log } = benchRun('wan', { keep: opts.keep, deadlineMinutes: opts.quick ? 3 : 25 });
// After benchRun's exit hook (registered first, run first: every process stopped by PID), so the
// upstream is gone before its namespace is.
process.on('exit', () => link.destroySync());
process.on('SIGHUP', () => process.exit(129));
try {
  link.create();
} catch (err) {
  link.destroySync();
  if (!err.skip) throw err;
  process.stdout.write(`WAN case skipped: ${err.message}\n`);
  process.exit(0);
}

async function main() {
  const loadStart = loadavg();
  const t0 = Date.now();
  const logs = join(work, 'logs');
  mkdirSync(logs);
  log(`${link.describe()}`);
  const layers = makeLayers(work, config.bigSize, config.multi);
  const upstream = await startDistribution({ name: 'upstream', dir: logs, storage: join(work, 'upstream-storage'), netns: link.ns, host: link.nsAddr });
  const upstreamUrl = `http://${upstream.address}`;
  const upLog = new UpstreamLog(upstream);
  await pushImage(upstreamUrl, 'library/bench-big', '1', [layers.big]);
  const multi = await pushImage(upstreamUrl, 'library/bench-multi', '1', layers.multi);
  const imageBytes = multi.blobs.reduce((n, b) => n + b.size, 0);
  const bigPath = `/v2/library/bench-big/blobs/${layers.big.digest}`;
  const skopeo = skopeoEnv(join(work, 'skopeo'));
  await upLog.settle();
  const sent0 = link.stats();
  log(`seeded the upstream at ${upstreamUrl}; ${config.reps} repetition(s), a ${config.bigSize / MiB} MiB blob, a ${multi.blobs.length}-blob image of ${(imageBytes / MiB).toFixed(0)} MiB`);

  let instance = 0;
  /** One cold measurement of `sys` on fresh storage; the upstream's bytes counted once it went quiet. */
  async function coldRun(sys, body) {
    let s = { address: upstream.address, base: upstreamUrl };
    let storage;
    const name = `${sys}-${++instance}`;
    if (sys !== 'direct') {
      storage = join(work, 'storage', name);
      mkdirSync(storage, { recursive: true });
      const proc =
        sys === 'reference'
          ? await startDistribution({ name, dir: logs, storage, proxy: upstreamUrl })
          : await startRegmirror({ name, dir: logs, storage, upstream: upstreamUrl, root, nodeArgs: profileArgs(name) });
      s = { proc, address: proc.address, base: `http://${proc.address}` };
    }
    try {
      upLog.mark();
      const cpu0 = s.proc ? cpuSeconds(s.proc) : 0;
      const upCpu0 = cpuSeconds(upstream);
      const sched0 = s.proc ? schedSeconds(s.proc) : undefined;
      const client0 = reapedChildrenCpu();
      const seconds = await body(s);
      const client = reapedChildrenCpu() - client0;
      // Right after the client's last byte: what the server spent and waited for while it was served.
      const sched = s.proc ? schedSeconds(s.proc) : undefined;
      const during = (k) => (sched ? sched[k] - sched0[k] : NaN);
      // The reference goes on fetching after its client is done: that traffic is on the link too.
      if (!(await upLog.settle())) log(`warning: upstream still busy 60 s after a ${sys} run`);
      const cpu = s.proc ? cpuSeconds(s.proc) - cpu0 : NaN;
      const upCpu = cpuSeconds(upstream) - upCpu0;
      if (s.proc) await stopProcess(s.proc);
      await upLog.settle({ quietMs: 300 });
      // One system at a time: every request in the window is this run's.
      return { name, seconds, cpu, client, upCpu, wait: during('wait'), mainCpu: during('mainCpu'), mainWait: during('mainWait'), upstreamBytes: upLog.take().blobBytes };
    } finally {
      if (s.proc) await stopProcess(s.proc);
      if (storage) rmSync(storage, { recursive: true, force: true });
    }
  }

  const series = () => Object.fromEntries(SYSTEMS.map((sys) => [sys, []]));
  const samples = Object.fromEntries(['blob', 'pull'].flatMap((k) => ['', 'Up', 'Cpu', 'Client', 'UpCpu', 'Cores', 'Wait', 'MainCpu', 'MainWait'].map((m) => [k + m, series()])));
  const note = (k, sys, r, size) => {
    samples[k][sys].push(r.seconds);
    samples[`${k}Up`][sys].push(r.upstreamBytes / size);
    samples[`${k}Cpu`][sys].push(r.cpu);
    samples[`${k}Client`][sys].push(r.client);
    samples[`${k}UpCpu`][sys].push(r.upCpu);
    // How many cores the run's processes got on average: on a shared machine, what sets the wall
    // time when the run needs more CPU than that in the link's time.
    samples[`${k}Cores`][sys].push(((Number.isNaN(r.cpu) ? 0 : r.cpu) + r.client + r.upCpu) / r.seconds);
    samples[`${k}Wait`][sys].push(r.wait);
    // A Go program's first thread is one of many running goroutines: only Node's main thread means something alone.
    samples[`${k}MainCpu`][sys].push(sys === 'regmirror' ? r.mainCpu : NaN);
    samples[`${k}MainWait`][sys].push(sys === 'regmirror' ? r.mainWait : NaN);
  };
  const blobRuns = new Set();
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) {
      const r = await coldRun(sys, async (s) => (await curlGet(s.base + bigPath, config.bigSize)).seconds);
      blobRuns.add(r.name);
      note('blob', sys, r, config.bigSize);
      log(`cold blob rep ${rep} ${sys}: ${r.seconds.toFixed(3)} s, upstream ${(r.upstreamBytes / config.bigSize).toFixed(2)}× the blob`);
    }
  }
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) {
      const r = await coldRun(sys, async (s) => (await skopeoCopy(skopeo, s.address, 'library/bench-multi:1')).seconds);
      note('pull', sys, r, imageBytes);
      log(`cold image pull rep ${rep} ${sys}: ${r.seconds.toFixed(3)} s, upstream ${(r.upstreamBytes / imageBytes).toFixed(2)}× the image`);
    }
  }
  const sent = link.stats();
  await stopProcess(upstream);
  const versions = {
    distribution: (await toolVersion('docker-registry', ['--version'])).split(' ').pop(),
    skopeo: await toolVersion('skopeo', ['--version']),
    curl: (await toolVersion('curl', ['--version'])).split(' ').slice(0, 2).join(' '),
  };
  process.stdout.write(
    `${report(samples, { loadStart, loadEnd: loadavg(), minutes: (Date.now() - t0) / 60_000, imageBytes, blobs: multi.blobs.length, versions, sent0, sent })}\n`,
  );
  if (opts.profile) process.stdout.write(`\nregmirror's CPU profiles of the cold-blob runs:\n${profileSummary(blobRuns)}`);
}

function report(samples, { loadStart, loadEnd, minutes, imageBytes, blobs, versions, sent0, sent }) {
  const la = (l) => l.map((x) => x.toFixed(1)).join(' / ');
  const f = (v, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  const x = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
  const m = (key, sys) => median(samples[key][sys]);
  const lineRate = (bytes) => (bytes * 8) / rateBits(SHAPE.rate);
  const lines = [
    `Upstream: distribution ${versions.distribution} in its own network namespace behind a veth pair; ${link.describe()}.`,
    `Clients on the host: ${versions.curl} to /dev/null (blob), ${versions.skopeo} \`copy … dir:\` (image). Mirrors on 127.0.0.1, fresh empty storage every run.`,
    `Cold blob ${config.bigSize / MiB} MiB (${f(lineRate(config.bigSize), 2)} s at the line rate), image ${blobs} blobs ${f(imageBytes / MiB, 0)} MiB (${f(lineRate(imageBytes), 2)} s);`,
    `${config.reps} repetition(s), order rotated each time, medians. ${cpus().length} cores, Linux ${release()}, Node ${process.version}; ${f(minutes, 1)} minutes;`,
    `load average (1/5/15 min) ${la(loadStart)} at the start, ${la(loadEnd)} at the end.`,
    '',
    '| measurement | direct | regmirror | reference | regmirror ÷ direct | reference ÷ direct | regmirror ÷ reference | target | met |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const timeRow = (label, key) => {
    const [d, r, ref] = SYSTEMS.map((sys) => m(key, sys));
    lines.push(`| ${label} | ${f(d)} | ${f(r)} | ${f(ref)} | ${x(r / d)} | ${x(ref / d)} | ${x(r / ref)} | ≤ 1.05× direct | ${r / d <= 1.05 ? 'yes' : '**no**'} |`);
  };
  const plainRow = (label, key, show) => lines.push(`| ${label} | ${SYSTEMS.map((sys) => show(m(key, sys))).join(' | ')} |  |  |  |  |  |`);
  const cases = [
    { key: 'blob', name: 'cold blob', client: 'curl', whole: 'blob size', cpu: 's, until the upstream went quiet', during: ', during the GET' },
    { key: 'pull', name: 'cold image pull', client: 'skopeo', whole: 'image size', cpu: 's', during: '' },
  ];
  for (const c of cases) {
    timeRow(`${c.name}, ${c.client} (wall s)`, c.key);
    plainRow(`${c.name}: upstream bytes ÷ ${c.whole}`, `${c.key}Up`, x);
    const cpuRows = [
      ['Cpu', `server CPU (${c.cpu})`],
      ['Client', `client CPU, ${c.client} (s)`],
      ['UpCpu', 'upstream CPU (s)'],
      ['Cores', 'CPU of server + client + upstream ÷ wall time (cores)'],
      ['Wait', `server run-queue wait, all threads${c.during} (s)`],
      ['MainCpu', `main thread CPU${c.during} (s)`],
      ['MainWait', `main thread run-queue wait${c.during} (s)`],
    ];
    for (const [suffix, what] of cpuRows) plainRow(`${c.name}: ${what}`, c.key + suffix, (v) => f(v, 2));
  }
  lines.push('', '| series | system | samples (run order) |', '|---|---|---|');
  for (const [key, bySys] of Object.entries(samples)) {
    for (const sys of SYSTEMS) {
      if (bySys[sys].every((v) => Number.isNaN(v))) continue;
      lines.push(`| ${key} | ${sys} | ${bySys[sys].map((v) => f(v, key.endsWith('Up') ? 2 : 3)).join(', ')} |`);
    }
  }
  if (sent0 && sent) {
    lines.push(
      '',
      `Upstream → mirror qdisc during the measurements: ${f((sent.bytes - sent0.bytes) / MiB, 0)} MiB in ${sent.packets - sent0.packets} packets, ` +
        `${sent.dropped - sent0.dropped} dropped, ${sent.overlimits - sent0.overlimits} overlimits (packets tbf held back for the rate).`,
    );
  }
  return lines.join('\n');
}

/**
 * CPU seconds of this process's children that have exited and been reaped (cutime + cstime): the
 * client's, around one curl or skopeo run (a server stopped in that window would count too; none is).
 */
function reapedChildrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

const profiles = join(work, 'profiles');
/** `node --cpu-prof` for regmirror with --profile: one profile per cold run, written when it stops. */
function profileArgs(name) {
  return opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

/** The summary of regmirror's profiles of the cold-blob runs. */
function profileSummary(blobRuns) {
  const files = (existsSync(profiles) ? readdirSync(profiles) : [])
    .filter((f) => blobRuns.has(f.replace(/\.cpuprofile$/, '')))
    .map((f) => join(profiles, f));
  if (files.length === 0) return 'no profile written (regmirror did not exit cleanly on SIGTERM)';
  return execFileSync(process.execPath, [join(root, 'bench/profile-summary.mjs'), ...files, '--top', '15'], { encoding: 'utf8' });
}

/** A tc rate (`1gbit`, `500mbit`) in bits per second; tc's k/m/g are powers of 1000 for bit rates. */
function rateBits(rate) {
  const [, n, unit] = /^([\d.]+)([kmg]?)bit$/.exec(rate);
  return Number(n) * { '': 1, k: 1e3, m: 1e6, g: 1e9 }[unit];
}

exitWhenDone(
  main().finally(() => {
    stopAllSync();
    link.destroySync();
    const left = link.leftovers();
    if (left.length > 0) throw new Error(`still present after cleanup: ${left.join(', ')}`);
  }),
  log,
);
