// node bench/compare.mjs [--size MiB] [--reps N] [--only warm|cold|concurrent|tags] [--tls] [--hash-thread] [--recycle-pages] [--keep] [--baseline DIR] [--node-arg=FLAG ...]   (after npm run build)
// A quick A/B loop for optimising one path: the warm blob (regmirror, the reference and the plain
// file server, alternately, with server CPU per GET), the cold blob (fresh storage per run) and tag
// GETs of a warm manifest under wrk (req/s). `--tls`: the upstream serves https (a CA made for the
// run, which regmirror gets as the upstream's `ca` and the reference as SSL_CERT_FILE), as real ones do.
// `--hash-thread`: regmirror (not the baseline, which may be this same checkout) with storage.hashThread on.
// `--recycle-pages` (a diagnostic, not how users run): before each server starts, the earlier
// runs' storage is removed and procs.mjs's recyclePages runs, for both sides alike.
// `--only concurrent` also sends the same 16 GETs again to regmirror once cached: the warm floor.
// Prints medians and ratios only; `npm run bench` is what writes BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { concurrentGets, curlGet, MANIFEST_ACCEPT, wrk } from './lib/clients.mjs';
import { cpuSeconds, recyclePages, startDistribution, startFileServer, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
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
    tls: { type: 'boolean', default: false },
    'hash-thread': { type: 'boolean', default: false },
    'recycle-pages': { type: 'boolean', default: false },
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
let upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'up') });
await pushImage(`http://${upstream.address}`, 'library/bench-big', '1', [layer]);
await pushImage(`http://${upstream.address}`, 'library/bench-tags', '1', [randomBlobFile(join(work, 'small.layer'), 64 * 1024)]);
const tls = values.tls ? makeCa() : undefined;
if (tls) {
  // Pushed over http (the push client trusts no private CA), then served over https from the same storage.
  await stopProcess(upstream);
  upstream = await startDistribution({ name: 'upstream-tls', dir: work, storage: join(work, 'up'), tls });
}
const upstreamUrl = `${tls ? 'https' : 'http'}://${upstream.address}`;
const path = `/v2/library/bench-big/blobs/${layer.digest}`;
const start = (sys) => {
  if (values['recycle-pages']) {
    removeEarlierStorage();
    recyclePages(work);
  }
  const name = `${sys}-${++n}`;
  const storage = join(work, name);
  mkdirSync(storage);
  if (sys === 'reference') return startDistribution({ name, dir: work, storage, proxy: upstreamUrl, trust: tls?.ca });
  const sections = {
    ...(tls ? { upstreams: { 'docker.io': { url: upstreamUrl, library: true, ca: tls.ca } } } : {}),
    ...(values['hash-thread'] && sys === 'regmirror' ? { storage: { hashThread: true } } : {}),
  };
  return startRegmirror({ name, dir: work, storage, upstream: upstreamUrl, root: sys === 'baseline' ? resolve(values.baseline) : root, nodeArgs: values['node-arg'], sections });
};

function removeEarlierStorage() {
  for (let i = 1; i <= n; i++) for (const sys of ['regmirror', 'reference', 'baseline']) rmSync(join(work, `${sys}-${i}`), { recursive: true, force: true });
}

/** A CA and a certificate for 127.0.0.1 it signed, as files in the run's directory. */
function makeCa() {
  const f = (name) => join(work, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=bench CA', '-addext', 'keyUsage=critical,keyCertSign']);
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', f('up.key'), '-out', f('up.crt'), '-subj', '/CN=127.0.0.1', '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' });
  return { ca: f('ca.crt'), cert: f('up.crt'), key: f('up.key') };
}

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
  const warmSecs = Object.fromEntries(systems.map((k) => [k, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const sys of rep % 2 ? [...systems].reverse() : systems) {
      const p = await start(sys);
      const c0 = cpuSeconds(p);
      const url = `http://${p.address}${path}`;
      const { seconds } = values.only === 'concurrent' ? await concurrentGets(url, size, 16) : await curlGet(url, size);
      // The reference keeps fetching after the client is done; CPU here is what the GET itself cost.
      cpu[sys].push(cpuSeconds(p) - c0);
      secs[sys].push(seconds);
      if (values.only === 'concurrent') warmSecs[sys].push((await concurrentGets(url, size, 16)).seconds);
      await stopProcess(p);
    }
  }
  for (const sys of systems) process.stdout.write(`cold ${sys.padEnd(10)} s ${fmt(secs[sys])}   cpu s ${fmt(cpu[sys], 2)}\n`);
  process.stdout.write(`cold ratio (wall, lower is better) ${(median(secs.regmirror) / median(secs.reference)).toFixed(2)}x\n`);
  if (values.only === 'concurrent') {
    // The reference may still be storing the blob from its second fetch: its second round is no floor.
    for (const sys of systems.filter((k) => k !== 'reference')) process.stdout.write(`warm ${sys.padEnd(10)} s ${fmt(warmSecs[sys])}   cold / warm ${(median(secs[sys]) / median(warmSecs[sys])).toFixed(2)}x\n`);
  }
  if (values.baseline) process.stdout.write(`cold regmirror / baseline ${(median(secs.regmirror) / median(secs.baseline)).toFixed(2)}x\n`);
}
await stopProcess(upstream);
process.exit(0);
