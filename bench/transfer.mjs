// npm run bench:transfer [-- --size-mib N] [--keep]
// Export and import throughput of a set of images (1 GiB by default), side by side with skopeo
// on the same content, and the peak RSS of `regmirror import`. Prints a table; the numbers go into
// BENCHMARKS.md by hand (below the marker that `npm run bench` keeps).
//
//   export, cold    regmirror export (serve running, cache empty: pulled through it) → tar
//   export, warm    regmirror export of the same set again (cache only) → tar, and → directory
//   skopeo          skopeo copy docker://<registry>/… oci:DIR:<ref>, image after image (what an
//                   operator would run without regmirror), from the registry itself
//   import          regmirror import of the tar into a fresh storage, alone (CLI holds it) and
//                   beside a running serve (through its admin socket); peak RSS of the CLI (and serve)
//   skopeo load     skopeo copy oci:DIR:<ref> docker://<registry>/… into an empty distribution
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { peakRss, startDistribution, startNodeFlags, startProcess, stopAllSync, stopProcess } from './lib/procs.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: { 'size-mib': { type: 'string', default: '1024' }, keep: { type: 'boolean', default: false } } });
const total = Number(opts['size-mib']) * MiB;
const work = mkdtempSync(join(tmpdir(), 'regmirror-bench-transfer-'));
const t0 = Date.now();
const log = (msg) => process.stderr.write(`[transfer ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
process.on('exit', () => {
  stopAllSync();
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const main = join(root, 'dist/cli/main.js');
const node = [process.execPath, ...startNodeFlags(root), main];

/** Runs a command to the end; wall seconds, and peak RSS (KiB → bytes) from GNU time. */
function timed(cmd, args) {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS %M', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.once('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err.slice(-2000)}`));
      resolvePromise({ seconds, rss: Number(/MAXRSS (\d+)/.exec(err)?.[1] ?? 0) * 1024, out });
    });
  });
}

function writeConfig(name, storage, upstream) {
  const file = join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', storage: { path: storage, maxSize: '8GiB' }, upstreams: { 'registry.bench': { url: upstream } }, manifestTTL: '30m', log: { level: 'warn' } }));
  return file;
}

async function serve(name, config) {
  return startProcess({
    name,
    cmd: node[0],
    args: [...node.slice(1), 'serve', '--config', config, '--log-level', 'info'],
    logFile: join(work, `${name}.log`),
    ready: /"address":"(127\.0\.0\.1:\d+)".*"msg":"regmirror listening"/,
  });
}

const mbps = (seconds) => `${(total / MiB / seconds).toFixed(0)} MiB/s`;
const rows = [];
const row = (what, r, note = '') => {
  rows.push([what, `${r.seconds.toFixed(1)} s`, mbps(r.seconds), r.rss ? `${(r.rss / MiB).toFixed(0)} MiB` : '', note]);
  log(`${what}: ${r.seconds.toFixed(1)} s`);
};

const load = [loadavg()[0]];
log(`work dir ${work}; seeding ${total / MiB} MiB`);
mkdirSync(join(work, 'layers'));
const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'upstream-data') });
const images = 8;
const per = Math.floor(total / images);
const refs = [];
for (let i = 0; i < images; i++) {
  const big = randomBlobFile(join(work, 'layers', `big-${i}`), per - 8 * MiB);
  const small = randomBlobFile(join(work, 'layers', `small-${i}`), 8 * MiB);
  await pushImage(`http://${upstream.address}`, `bench/image-${i}`, '1', [big, small]);
  refs.push(`registry.bench/bench/image-${i}:1`);
}
rmSync(join(work, 'layers'), { recursive: true, force: true });

// The connected side: a serve in front of the registry; export goes through its admin socket.
const connectedConfig = writeConfig('connected', join(work, 'connected'), `http://${upstream.address}`);
const connected = await serve('connected', connectedConfig);
row('regmirror export, cold (pulled through the cache) → tar', await timed(node[0], [...node.slice(1), 'export', '--config', connectedConfig, '--output', join(work, 'cold.tar'), ...refs]));
row('regmirror export, warm (from the cache) → tar', await timed(node[0], [...node.slice(1), 'export', '--config', connectedConfig, '--output', join(work, 'set.tar'), ...refs]));
row('regmirror export, warm → directory', await timed(node[0], [...node.slice(1), 'export', '--config', connectedConfig, '--output', join(work, 'set-dir'), ...refs]));
await stopProcess(connected);
rmSync(join(work, 'cold.tar'), { force: true });

const policy = join(work, 'policy.json');
writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
const skopeo = (args) => ['--policy', policy, '--tmpdir', work, ...args];
let skopeoExport = { seconds: 0, rss: 0 };
for (const [i, ref] of refs.entries()) {
  const r = await timed('skopeo', skopeo(['copy', '--src-tls-verify=false', `docker://${upstream.address}/bench/image-${i}:1`, `oci:${join(work, 'skopeo-dir')}:${ref}`]));
  skopeoExport = { seconds: skopeoExport.seconds + r.seconds, rss: Math.max(skopeoExport.rss, r.rss) };
}
row('skopeo copy docker:// → oci: (from the registry)', skopeoExport, `${images} runs`);
rmSync(join(work, 'skopeo-dir'), { recursive: true, force: true });

// The disconnected side: an upstream that answers nothing.
const nowhere = 'http://127.0.0.1:9';
const aloneConfig = writeConfig('alone', join(work, 'alone'), nowhere);
row('regmirror import tar, alone', await timed(node[0], [...node.slice(1), 'import', '--config', aloneConfig, join(work, 'set.tar')]), 'peak RSS of the CLI');
rmSync(join(work, 'alone'), { recursive: true, force: true });
const siteConfig = writeConfig('site', join(work, 'site'), nowhere);
const site = await serve('site', siteConfig);
const beside = await timed(node[0], [...node.slice(1), 'import', '--config', siteConfig, join(work, 'set.tar')]);
row('regmirror import tar, beside serve (admin socket)', beside, `serve peak ${(peakRss(site) / MiB).toFixed(0)} MiB`);
await stopProcess(site);
rmSync(join(work, 'site'), { recursive: true, force: true });

const target = await startDistribution({ name: 'target', dir: work, storage: join(work, 'target-data') });
let skopeoLoad = { seconds: 0, rss: 0 };
for (const [i, ref] of refs.entries()) {
  const r = await timed('skopeo', skopeo(['copy', '--dest-tls-verify=false', `oci:${join(work, 'set-dir')}:${ref}`, `docker://${target.address}/bench/image-${i}:1`]));
  skopeoLoad = { seconds: skopeoLoad.seconds + r.seconds, rss: Math.max(skopeoLoad.rss, r.rss) };
}
row('skopeo copy oci: → docker:// (into distribution)', skopeoLoad, `${images} runs`);
await stopProcess(target);
await stopProcess(upstream);
load.push(loadavg()[0]);

const header = ['what', 'wall', 'throughput', 'peak RSS', 'note'];
const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
const line = (r) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
process.stdout.write(`${total / MiB} MiB in ${images} images (${images} × (${(per - 8 * MiB) / MiB} MiB + 8 MiB) random layers); load average ${load.map((l) => l.toFixed(1)).join(' → ')}\n\n`);
process.stdout.write([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n') + '\n');

