// node bench/profile.mjs SCENARIO [--size MiB] [--runs N]   (after npm run build)
// Runs one bench scenario against regmirror under `node --cpu-prof` and prints the profile summary.
// Scenarios: warm (N warm GETs of the blob), cold (one cold GET), concurrent (16 cold GETs at once),
// manifest (wrk on the tag for 5 s).
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { concurrentGets, curlGet, MANIFEST_ACCEPT, wrk } from './lib/clients.mjs';
import { peakRss, startDistribution, startRegmirror, stopAllSync, stopProcess } from './lib/procs.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';

const MiB = 1024 * 1024;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { size: { type: 'string', default: '512' }, runs: { type: 'string', default: '5' }, keep: { type: 'boolean', default: false } },
});
const scenario = positionals[0];
if (!['warm', 'cold', 'concurrent', 'manifest'].includes(scenario)) {
  process.stderr.write('usage: profile.mjs warm|cold|concurrent|manifest [--size MiB] [--runs N]\n');
  process.exit(2);
}
const size = Math.min(4096, Number(values.size)) * MiB;
const runs = Math.max(1, Math.min(50, Number(values.runs)));
const work = mkdtempSync(join(tmpdir(), 'regmirror-profile-'));
process.on('exit', () => {
  stopAllSync();
  if (!values.keep) rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
const guard = setTimeout(() => process.exit(3), 10 * 60_000);
guard.unref();

const profiles = join(work, 'profiles');
mkdirSync(profiles);
const layer = randomBlobFile(join(work, 'big.layer'), size);
const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'upstream-storage') });
const upstreamUrl = `http://${upstream.address}`;
await pushImage(upstreamUrl, 'library/bench-big', '1', [layer]);
const mirror = await startRegmirror({
  name: 'regmirror',
  dir: work,
  storage: join(work, 'mirror-storage'),
  upstream: upstreamUrl,
  root,
  nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profiles}`, '--cpu-prof-name=regmirror.cpuprofile'],
});
const url = `http://${mirror.address}/v2/library/bench-big/blobs/${layer.digest}`;
const t = process.hrtime.bigint();
if (scenario === 'warm') {
  await curlGet(url, size);
  for (let i = 0; i < runs; i++) process.stdout.write(`warm GET ${(size / (await curlGet(url, size)).seconds / 1e9).toFixed(2)} GB/s\n`);
} else if (scenario === 'cold') {
  process.stdout.write(`cold GET ${(await curlGet(url, size)).seconds.toFixed(3)} s\n`);
} else if (scenario === 'concurrent') {
  process.stdout.write(`16 cold GETs ${(await concurrentGets(url, size, 16)).seconds.toFixed(3)} s\n`);
} else {
  const tag = `http://${mirror.address}/v2/library/bench-big/manifests/1`;
  await curlGet(tag, -1).catch(() => {}); // warm the tag; the size check does not matter here
  process.stdout.write(`tag GET ${(await wrk(tag, { connections: 64, seconds: 5, headers: { Accept: MANIFEST_ACCEPT } })).rps} req/s\n`);
}
process.stdout.write(`scenario wall ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} s, regmirror VmHWM ${(peakRss(mirror) / MiB).toFixed(0)} MiB\n`);
await stopProcess(mirror, 20_000);
await stopProcess(upstream);
const files = readdirSync(profiles).map((f) => join(profiles, f));
if (files.length === 0) throw new Error('no profile written (regmirror did not exit cleanly on SIGTERM)');
process.stdout.write(execFileSync(process.execPath, [join(root, 'bench/profile-summary.mjs'), ...files, '--top', '30'], { encoding: 'utf8' }));
if (values.keep) process.stdout.write(`kept ${work}\n`);
process.exit(0);
