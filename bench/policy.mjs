// npm run build && node bench/policy.mjs [--reps N] [--seconds N] [--connections N] [--keep]
// What the policy gate costs on the hot path: manifest GET by tag at 64 connections (wrk), warm, on
// a mirror without `policy` and on one whose rule requires a cosign signature of the image (signed,
// so every request is served). The signature is verified once and the decision remembered for the
// tag TTL; what remains per request is the rule lookup and the remembered decision. Two regmirror
// processes on one upstream (distribution), alternating order per rep: the ratio comes from one run.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchRun, exitWhenDone } from './lib/run.mjs';
import { median } from './lib/report.mjs';
import { MANIFEST_ACCEPT, toolVersion, wrk } from './lib/clients.mjs';
import { cpuSeconds, startDistribution, startRegmirror, stopProcess } from './lib/procs.mjs';
import { pushCosignSignature, pushImage, randomBlobFile } from './lib/seed.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    keep: { type: 'boolean', default: false },
  },
});
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, Math.floor(Number(v))));
const reps = clamp(opts.reps, 1, 20);
const seconds = clamp(opts.seconds, 1, 30);
const connections = clamp(opts.connections, 1, 256);

const { work, log } = benchRun('policy', { keep: opts.keep });

const TAG = '/v2/team/signed/manifests/1';
const headers = { Accept: MANIFEST_ACCEPT };

async function main() {
  const loadStart = loadavg();
  const logs = join(work, 'logs');
  mkdirSync(logs);
  const upstream = await startDistribution({ name: 'upstream', dir: logs, storage: join(work, 'upstream-storage') });
  const base = `http://${upstream.address}`;
  const image = await pushImage(base, 'team/signed', '1', [randomBlobFile(join(work, 'layer'), 1 << 20)]);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyFile = join(work, 'cosign.pub');
  writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  await pushCosignSignature(base, 'team/signed', image.manifestDigest, privateKey);
  const start = (name, policy) =>
    startRegmirror({
      name,
      dir: logs,
      storage: join(work, `${name}-storage`),
      upstream: base,
      root,
      sections: policy ? { policy: [{ repositories: ['docker.io/team/**'], requireSignature: { keys: [keyFile] } }] } : {},
    });
  const servers = { off: await start('policy-off', false), on: await start('policy-on', true) };
  const url = { off: `http://${servers.off.address}${TAG}`, on: `http://${servers.on.address}${TAG}` };
  for (const k of ['off', 'on']) {
    const res = await fetch(url[k], { headers });
    if (res.status !== 200) throw new Error(`${k}: ${res.status} ${await res.text()}`);
    await wrk(url[k], { connections, seconds: 1, headers }); // unrecorded: the JIT warms up
  }
  log('both mirrors warm; the signed image is served by the gated one');
  const rps = { off: [], on: [] };
  const cpuUs = { off: [], on: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const k of rep % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const cpu0 = cpuSeconds(servers[k]);
      const r = await wrk(url[k], { connections, seconds, headers });
      rps[k].push(r.rps);
      cpuUs[k].push(((cpuSeconds(servers[k]) - cpu0) / (r.rps * seconds)) * 1e6);
    }
    log(`rep ${rep + 1}/${reps}: off ${Math.round(rps.off[rep])} req/s, on ${Math.round(rps.on[rep])} req/s`);
  }
  for (const k of ['off', 'on']) await stopProcess(servers[k], 20_000);
  await stopProcess(upstream);
  const loadEnd = loadavg();
  const fmt = (l) => l.map((x) => x.toFixed(1)).join(' / ');
  const ratios = rps.on.map((on, i) => on / rps.off[i]);
  const row = (label, k) => `| ${label} | ${Math.round(median(rps[k])).toLocaleString('en')} | ${median(cpuUs[k]).toFixed(0)} µs | ${rps[k].map((x) => Math.round(x)).join(', ')} |`;
  const wrkVersion = (await toolVersion('wrk', ['--version'])).split(' ').slice(0, 2).join(' ');
  process.stdout.write(
    [
      `### Policy gate overhead (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} CPUs, load ${fmt(loadStart)} at the start, ${fmt(loadEnd)} at the end)`,
      '',
      `Manifest GET by tag, warm, wrk ${connections} connections, ${seconds} s × ${reps} reps per mirror, alternating (${wrkVersion}):`,
      '',
      '| mirror | req/s (median) | server CPU per request (median) | req/s per rep |',
      '|---|---|---|---|',
      row('no policy', 'off'),
      row('requireSignature (signed image)', 'on'),
      '',
      `on ÷ off: rate ${median(ratios).toFixed(3)} (median of the per-rep ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}), ` +
        `i.e. overhead ${((1 - median(ratios)) * 100).toFixed(1)}% (target < 10%); server CPU per request ${(median(cpuUs.on) / median(cpuUs.off)).toFixed(3)}×.`,
      '',
    ].join('\n'),
  );
}

exitWhenDone(main(), log);
