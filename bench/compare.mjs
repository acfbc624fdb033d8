// node bench/compare.mjs [--size MiB] [--reps N] [--only warm|cold|concurrent|tags] [--keep] [--baseline DIR] [--node-arg=FLAG ...]   (after npm run build)
// A quick A/B loop for optimising one path: the warm blob (regmirror, the reference and the plain
// file server, alternately, with server CPU per GET), the cold blob (fresh storage per run) and tag
// GETs of a warm manifest under wrk (req/s).
// Prints medians and ratios only; `npm run bench` is what writes BENCHMARKS.md.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { concurrentGets, curlGet, MANIFEST_ACCEPT, wrk } from './lib/clients.mjs';
import { cpuSeconds, startDistribution, startFileServer, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    reps: { type: 'string', default: '7' },
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    // Another regmirror build (a checkout with dist/ built) to measure as 'baseline' alongside.
    baseline: { type: 'string' },
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
const size = Math.max(1, Math.min(2048, Number(values.size))) * MiB;
const reps = Math.max(1, Math.min(30, Number(values.reps)));
const work = mkdtempSync(join(tmpdir(), 'regmirror-compare-'));
process.on('exit', () => {
  stopAllSync();
  if (values.keep) process.stderr.write(`kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => process.exit(3), 15 * 60_000).unref();

const fmt = (xs, d = 3) => `${median(xs).toFixed(d)}  [${xs.map((x) => x.toFixed(d)).join(' ')}]`;
let n = 0;
const layer = randomBlobFile(join(work, 'big.layer'), size);
const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'up') });
const upstreamUrl = `http://${upstream.address}`;
await pushImage(upstreamUrl, 'library/bench-big', '1', [layer]);
const path = `/v2/library/bench-big/blobs/${layer.digest}`;
const start = (sys) => {
  const name = `${sys}-${++n}`;
  const storage = join(work, name);
  mkdirSync(storage);
  if (sys === 'reference') return startDistribution({ name, dir: work, storage, proxy: upstreamUrl });
  return startRegmirror({ name, dir: work, storage, upstream: upstreamUrl, root: sys === 'baseline' ? resolve(values.baseline) : root, nodeArgs: values['node-arg'] });
};

if (values.only === undefined || values.only === 'warm') {
  const procs = { regmirror: await start('regmirror'), reference: await start('reference'), fileServer: await startFileServer({ dir: work, file: layer.path, root }) };
  if (values.baseline) procs.baseline = await start('baseline');
  for (const p of Object.values(procs)) await curlGet(`http://${p.address}${path}`, size);
  const gbs = Object.fromEntries(Object.keys(procs).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(procs).map((k) => [k, []]));
  const who = Object.keys(procs);
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < who.length; i++) {
      const sys = who[(i + rep) % who.length];
      const c0 = cpuSeconds(procs[sys]);
      const { seconds } = await curlGet(`http://${procs[sys].address}${path}`, size);
      cpu[sys].push(cpuSeconds(procs[sys]) - c0);
      gbs[sys].push(size / seconds / 1e9);
    }
  }
  for (const sys of who) process.stdout.write(`warm ${sys.padEnd(10)} GB/s ${fmt(gbs[sys], 2)}   cpu s ${fmt(cpu[sys], 2)}\n`);
  process.stdout.write(
    `warm ratio vs reference ${(median(gbs.regmirror) / median(gbs.reference)).toFixed(2)}x, vs file server ${(median(gbs.regmirror) / median(gbs.fileServer)).toFixed(2)}x; ` +
      `cpu vs file server ${(median(cpu.regmirror) / median(cpu.fileServer)).toFixed(2)}x\n`,
  );
  if (values.baseline) process.stdout.write(`warm regmirror / baseline ${(median(gbs.regmirror) / median(gbs.baseline)).toFixed(2)}x\n`);
  for (const p of Object.values(procs)) await stopProcess(p);
}

if (values.only === undefined || values.only === 'tags') {
  const small = randomBlobFile(join(work, 'small.layer'), 64 * 1024);
  await pushImage(upstreamUrl, 'library/bench-tags', '1', [small]);
  const tagPath = '/v2/library/bench-tags/manifests/1';
  const procs = { regmirror: await start('regmirror'), reference: await start('reference') };
  if (values.baseline) procs.baseline = await start('baseline');
  const who = Object.keys(procs);
  const load = { connections: 64, seconds: 3, headers: { Accept: MANIFEST_ACCEPT } };
  for (const sys of who) await wrk(`http://${procs[sys].address}${tagPath}`, { ...load, seconds: 1 });
  const rps = Object.fromEntries(who.map((k) => [k, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < who.length; i++) {
      const sys = who[(i + rep) % who.length];
      rps[sys].push((await wrk(`http://${procs[sys].address}${tagPath}`, load)).rps);
    }
  }
  for (const sys of who) process.stdout.write(`tags ${sys.padEnd(10)} req/s ${fmt(rps[sys], 0)}\n`);
  process.stdout.write(`tags ratio vs reference ${(median(rps.regmirror) / median(rps.reference)).toFixed(2)}x\n`);
  if (values.baseline) process.stdout.write(`tags regmirror / baseline ${(median(rps.regmirror) / median(rps.baseline)).toFixed(2)}x\n`);
  for (const p of Object.values(procs)) await stopProcess(p);
}

if (values.only === undefined || values.only === 'cold' || values.only === 'concurrent') {
  const systems = values.baseline ? ['regmirror', 'reference', 'baseline'] : ['regmirror', 'reference'];
  const secs = Object.fromEntries(systems.map((k) => [k, []]));
  const cpu = Object.fromEntries(systems.map((k) => [k, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const sys of rep % 2 ? [...systems].reverse() : systems) {
      const p = await start(sys);
      const c0 = cpuSeconds(p);
      const url = `http://${p.address}${path}`;
      const { seconds } = values.only === 'concurrent' ? await concurrentGets(url, size, 16) : await curlGet(url, size);
      // The reference keeps fetching after the client is done; CPU here is what the GET itself cost.
      cpu[sys].push(cpuSeconds(p) - c0);
      secs[sys].push(seconds);
      await stopProcess(p);
    }
  }
  for (const sys of systems) process.stdout.write(`cold ${sys.padEnd(10)} s ${fmt(secs[sys])}   cpu s ${fmt(cpu[sys], 2)}\n`);
  process.stdout.write(`cold ratio (wall, lower is better) ${(median(secs.regmirror) / median(secs.reference)).toFixed(2)}x\n`);
  if (values.baseline) process.stdout.write(`cold regmirror / baseline ${(median(secs.regmirror) / median(secs.baseline)).toFixed(2)}x\n`);
}
await stopProcess(upstream);
process.exit(0);
