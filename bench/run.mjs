// npm run bench [-- --quick] [--reps N] [--out FILE] [--keep] [--profile] [--recycle-pages] [--node-arg=FLAG ...]
// regmirror side by side with distribution in proxy mode. Writes BENCHMARKS.md (full runs); then
// prints the WAN-shaped case of bench/wan.mjs as a separate section (not written to BENCHMARKS.md).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { abHead, concurrentGets, curlGet, MANIFEST_ACCEPT, sha256Of, skopeoCopy, skopeoEnv, toolVersion, wrk } from './lib/clients.mjs';
import { cpuSeconds, peakRss, recyclePages, startDistribution, startFileServer, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
import { markdown, table } from './lib/report.mjs';
import { makeLayers, pushImage } from './lib/seed.mjs';
import { AGENTS, UpstreamLog } from './lib/upstream-log.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    // A diagnostic: procs.mjs's recyclePages before each cold run, both sides; writes BENCHMARKS.md only with --out.
    'recycle-pages': { type: 'boolean', default: false },
    // Extra `node` flags for regmirror only, to test a runtime setting against the same reference.
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
// Full runs: 19 minutes for the main part, then bench/rollout.mjs under its own 45-minute deadline.
const config = opts.quick
  ? { reps: 1, bigSize: 16 * MiB, multi: [4, 2, 1].map((n) => n * MiB), wrkSeconds: 1, concurrency: 16, connections: 64, deadlineMin: 3 }
  : { reps: 5, bigSize: 512 * MiB, multi: [128, 64, 32, 16, 8, 4, 2, 1].map((n) => n * MiB), wrkSeconds: 5, concurrency: 16, connections: 64, deadlineMin: 19 + 45 };
if (opts.reps) config.reps = Math.max(1, Math.min(20, Number(opts.reps)));
const outFile = opts.out ?? (opts.quick || opts['recycle-pages'] ? undefined : join(root, 'BENCHMARKS.md'));

const work = mkdtempSync(join(tmpdir(), 'regmirror-bench-'));
const logs = join(work, 'logs');
mkdirSync(logs);
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
const t0 = Date.now();
const loadStart = loadavg();

// Every exit path stops what this run started, by PID, and removes the temp files.
let script; // the bench script child running now, if any
const cleanup = () => {
  // A bench script still running stops its own children on SIGTERM.
  if (script) script.kill('SIGTERM');
  stopAllSync();
  if (!opts.keep && !opts.profile) rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
const deadline = setTimeout(() => {
  log(`deadline of ${config.deadlineMin} minutes passed; stopping`);
  process.exit(3);
}, config.deadlineMin * 60_000);
deadline.unref();

const SYSTEMS = ['reference', 'regmirror'];
/** Alternate which system goes first, so neither always runs on a machine the other just warmed. */
const order = (rep) => (rep % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse());
const series = (...names) => Object.fromEntries(names.map((n) => [n, []]));
let instance = 0;

async function startSystem(sys, upstreamUrl) {
  const name = `${sys}-${++instance}`;
  const storage = join(work, 'storage', name);
  mkdirSync(storage, { recursive: true });
  const proc =
    sys === 'reference'
      ? await startDistribution({ name, dir: logs, storage, proxy: upstreamUrl })
      : await startRegmirror({
          name,
          dir: logs,
          storage,
          upstream: upstreamUrl,
          root,
          nodeArgs: [
            ...opts['node-arg'],
            ...(opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(work, 'profiles')}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
          ],
        });
  return { sys, proc, storage, base: `http://${proc.address}` };
}

async function stopSystem(s) {
  await stopProcess(s.proc);
  rmSync(s.storage, { recursive: true, force: true });
}

async function main() {
  const versions = {
    distribution: (await toolVersion('docker-registry', ['--version'])).split(' ').pop(),
    skopeo: await toolVersion('skopeo', ['--version']),
    curl: (await toolVersion('curl', ['--version'])).split(' ').slice(0, 2).join(' '),
    wrk: (await toolVersion('wrk', ['--version'])).split(' ').slice(0, 2).join(' '),
    ab: `ab ${/Version (\S+)/.exec(await toolVersion('ab', ['-V']))?.[1] ?? '?'}`,
  };
  log(`work dir ${work}; ${config.reps} repetitions; ${config.bigSize / MiB} MiB blob`);
  const layers = makeLayers(work, config.bigSize, config.multi);
  const upstream = await startDistribution({ name: 'upstream', dir: logs, storage: join(work, 'upstream-storage') });
  const upstreamUrl = `http://${upstream.address}`;
  const upLog = new UpstreamLog(upstream);
  const bigImg = await pushImage(upstreamUrl, 'library/bench-big', '1', [layers.big]);
  const multiImg = await pushImage(upstreamUrl, 'library/bench-multi', '1', layers.multi);
  const bigPath = `/v2/library/bench-big/blobs/${layers.big.digest}`;
  const multiRef = 'library/bench-multi:1';
  const skopeo = skopeoEnv(join(work, 'skopeo'));
  log('seeded the upstream');

  const samples = {
    warmBlob: series('reference', 'regmirror', 'fileServer', 'upstream'),
    warmBlobCpu: series('reference', 'regmirror', 'fileServer'),
    warmPull: series(...SYSTEMS),
    coldBlob: series(...SYSTEMS),
    coldBlobUpstream: series(...SYSTEMS),
    coldBlobCpu: series(...SYSTEMS),
    coldPull: series(...SYSTEMS),
    coldPullUpstream: series(...SYSTEMS),
    concurrent: series(...SYSTEMS),
    concurrentWarm: series(...SYSTEMS),
    concurrentUpstream: series(...SYSTEMS),
    concurrentGets: series(...SYSTEMS),
    concurrentCpu: series(...SYSTEMS),
    tagGet: series(...SYSTEMS),
    digestGet: series(...SYSTEMS),
    digestHead: series(...SYSTEMS),
  };
  const rss = { reference: 0, regmirror: 0 };
  const rssManifest = { reference: 0, regmirror: 0 };
  const noteRss = (s) => (rss[s.sys] = Math.max(rss[s.sys], peakRss(s.proc)));

  // --- warm: 1, 2 and 5 against one long-lived instance of each ---
  const warm = { reference: await startSystem('reference', upstreamUrl), regmirror: await startSystem('regmirror', upstreamUrl) };
  const fileServer = await startFileServer({ dir: logs, file: layers.big.path, root });
  for (const sys of SYSTEMS) {
    const { base } = warm[sys];
    await curlGet(base + bigPath, layers.big.size);
    await skopeoCopy(skopeo, warm[sys].proc.address, multiRef);
    await upLog.settle();
    const got = await sha256Of(base + bigPath);
    if (got !== layers.big.digest) throw new Error(`${sys} served ${got} for ${layers.big.digest}`);
  }
  upLog.mark();
  const targets = { ...warm, fileServer: { base: `http://${fileServer.address}`, proc: fileServer }, upstream: { base: upstreamUrl } };
  for (let rep = 0; rep < config.reps; rep++) {
    const four = ['reference', 'regmirror', 'fileServer', 'upstream'];
    for (let i = 0; i < four.length; i++) {
      const who = four[(i + rep) % four.length];
      const proc = targets[who].proc;
      const cpu0 = proc ? cpuSeconds(proc) : 0;
      const { seconds, bytes } = await curlGet(targets[who].base + bigPath, layers.big.size);
      samples.warmBlob[who].push(bytes / seconds / 1e9);
      if (proc) samples.warmBlobCpu[who].push(cpuSeconds(proc) - cpu0);
    }
  }
  log('1. warm blob done');
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) samples.warmPull[sys].push((await skopeoCopy(skopeo, warm[sys].proc.address, multiRef)).seconds);
  }
  log('2. warm image pull done');
  // The same concurrent GETs as 4, of the cached blob: the machine's floor for delivering them
  // (no upstream, no hashing, no writes), against which 4's cold figure is read.
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) samples.concurrentWarm[sys].push((await concurrentGets(warm[sys].base + bigPath, layers.big.size, config.concurrency)).seconds);
  }
  log('4. concurrent warm GETs (the floor for 4) done');
  await upLog.settle();
  // curl's own GETs of the upstream (the "distribution serving its own storage" row) fall in this
  // window too; the User-Agent tells them apart.
  const warmUpstreamGets = { reference: upLog.take(AGENTS.reference).blobGets, regmirror: upLog.take(AGENTS.regmirror).blobGets };
  for (const sys of SYSTEMS) noteRss(warm[sys]);
  await stopProcess(fileServer);

  const manifestPaths = {
    tagGet: '/v2/library/bench-multi/manifests/1',
    digestGet: `/v2/library/bench-multi/manifests/${multiImg.manifestDigest}`,
    digestHead: `/v2/library/bench-multi/manifests/${multiImg.manifestDigest}`,
  };
  for (let rep = 0; rep < config.reps; rep++) {
    for (const kind of ['tagGet', 'digestGet', 'digestHead']) {
      for (const sys of order(rep)) {
        const load = { connections: config.connections, seconds: config.wrkSeconds, headers: { Accept: MANIFEST_ACCEPT } };
        const url = warm[sys].base + manifestPaths[kind];
        const res = kind === 'digestHead' ? await abHead(url, load) : await wrk(url, load);
        samples[kind][sys].push(res.rps);
      }
    }
  }
  log('5. manifests done');
  for (const sys of SYSTEMS) rssManifest[sys] = peakRss(warm[sys].proc);
  for (const sys of SYSTEMS) await stopSystem(warm[sys]);

  // --- cold: 3 and 4, each run on a fresh server with empty storage ---
  async function coldRun(sys, body) {
    if (opts['recycle-pages']) recyclePages(work);
    const s = await startSystem(sys, upstreamUrl);
    try {
      upLog.mark();
      const cpu0 = cpuSeconds(s.proc);
      const seconds = await body(s);
      if (!(await upLog.settle())) log(`warning: upstream still busy 60 s after a ${sys} run`);
      const cpu = cpuSeconds(s.proc) - cpu0;
      noteRss(s);
      await stopProcess(s.proc);
      // A download the stop cut short is logged by the upstream a moment later.
      await upLog.settle({ quietMs: 300 });
      return { seconds, cpu, up: upLog.take(AGENTS[sys]) };
    } finally {
      await stopSystem(s);
    }
  }
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) {
      const { seconds, cpu, up } = await coldRun(sys, async (s) => (await curlGet(s.base + bigPath, layers.big.size)).seconds);
      samples.coldBlob[sys].push(seconds);
      samples.coldBlobCpu[sys].push(cpu);
      samples.coldBlobUpstream[sys].push(up.blobBytes);
    }
  }
  log('3. cold blob done');
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) {
      const { seconds, up } = await coldRun(sys, async (s) => (await skopeoCopy(skopeo, s.proc.address, multiRef)).seconds);
      samples.coldPull[sys].push(seconds);
      samples.coldPullUpstream[sys].push(up.blobBytes);
    }
  }
  log('3. cold image pull done');
  for (let rep = 0; rep < config.reps; rep++) {
    for (const sys of order(rep)) {
      const { seconds, cpu, up } = await coldRun(sys, async (s) => (await concurrentGets(s.base + bigPath, layers.big.size, config.concurrency)).seconds);
      samples.concurrent[sys].push(seconds);
      samples.concurrentCpu[sys].push(cpu);
      samples.concurrentUpstream[sys].push(up.blobBytes);
      samples.concurrentGets[sys].push(up.blobGets);
    }
  }
  log('4. concurrent cold GETs done');
  await stopProcess(upstream);

  const result = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    elapsedSeconds: (Date.now() - t0) / 1000,
    loadStart,
    loadEnd: loadavg(),
    nodeArgs: opts['node-arg'],
    config: { ...config, multiCount: config.multi.length, multiTotal: config.multi.reduce((a, b) => a + b, 0) },
    samples,
    rss,
    rssManifest,
    warmUpstreamGets,
    bigImage: bigImg.manifestDigest,
  };
  process.stdout.write(`${table(result)}\n`);
  if (outFile) {
    writeFileSync(outFile, markdown(result, versions) + keptSections(outFile));
    log(`wrote ${outFile}`);
  }
  if (opts.keep || opts.profile) log(`kept ${work}${opts.profile ? ' (profiles in profiles/)' : ''}`);
  // The cluster bench's harness too (its own script, bench:cluster, for the real figures).
  if (opts.quick) await benchScript('cluster.mjs', ['--quick']);
  // The single-mirror rollout (bench:rollout): its table is printed, not written to this file.
  await benchScript('rollout.mjs', opts.quick ? ['--quick'] : []);
}

async function benchScript(file, args) {
  const child = spawn(process.execPath, [join(root, 'bench', file), ...args], { stdio: 'inherit' });
  script = child;
  const [code, signal] = await once(child, 'exit');
  script = undefined;
  if (code !== 0) throw new Error(`bench/${file} ${args.join(' ')} exited ${code ?? signal}`);
}

/** Hand-written sections (profile evidence, bench:startup's numbers) live below this line and survive a new run. */
const KEPT = '<!-- Sections below this line are written by hand or by other scripts; npm run bench keeps them. -->';

function keptSections(file) {
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const at = old.indexOf(KEPT);
  return `\n${at === -1 ? `${KEPT}\n` : old.slice(at)}`;
}

/**
 * The WAN-shaped case (issue 21), printed as a section of its own after the table: bench/wan.mjs,
 * small and one repetition with --quick. It needs root; without it, it prints one line saying so
 * and succeeds.
 */
async function wanSection() {
  const child = spawn(process.execPath, [join(root, 'bench/wan.mjs'), ...(opts.quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Its own exit handler removes its namespace; SIGTERM lets it run when this run ends first.
  const stop = () => child.kill('SIGTERM');
  process.on('exit', stop);
  const out = [];
  child.stdout.on('data', (c) => out.push(c));
  const [code, signal] = await once(child, 'close');
  process.off('exit', stop);
  process.stdout.write(`\n## WAN-shaped link (bench/wan.mjs)\n\n${Buffer.concat(out)}`);
  if (code !== 0) throw new Error(`bench/wan.mjs exited ${code ?? signal}`);
}

main().then(wanSection).then(
  () => process.exit(0),
  (err) => {
    log(`failed: ${err.stack ?? err}`);
    process.exit(1);
  },
);
