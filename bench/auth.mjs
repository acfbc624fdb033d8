// npm run build && node bench/auth.mjs [--reps N] [--seconds N] [--connections N] [--users N] [--cost N]
//   [--only manifest|tokens] [--profile] [--keep]
// What auth costs, against two regmirror processes (as `npm start` runs them) on one upstream:
// 1. manifest GET by tag at 64 connections (wrk), warm cache, on a mirror without auth and on one
//    with auth answering a Bearer token from its own /v2/token; alternating order, several reps, so
//    the ratio comes from one run on this noisy machine (server CPU per request beside the rate);
// 2. token issuance at /v2/token: anonymous, HTTP Basic of a real bcrypt htpasswd user (remembered
//    after its first check, src/auth/credentials.ts), first logins of distinct users, each a bcrypt
//    check at --cost (htpasswd -B writes cost 5 unless told -C), and one new user's first requests
//    all at once. (It replaces bench/tokens.mjs, which measured the endpoint with a stand-in password check.)
import bcrypt from 'bcryptjs';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { benchRun, exitWhenDone } from './lib/run.mjs';
import { MANIFEST_ACCEPT, toolVersion, wrk } from './lib/clients.mjs';
import { cpuSeconds, startDistribution, startRegmirror, stopProcess } from './lib/procs.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    users: { type: 'string', default: '16' },
    cost: { type: 'string', default: '10' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, Math.floor(Number(v))));
const reps = clamp(opts.reps, 1, 20);
const seconds = clamp(opts.seconds, 1, 30);
const connections = clamp(opts.connections, 1, 256);
const userCount = clamp(opts.users, 1, 256);
const cost = clamp(opts.cost, 4, 14);

const { work, log } = benchRun('auth', { keep: opts.keep || opts.profile });

const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const TAG = '/v2/library/bench-auth/manifests/1';
const TOKEN = '/v2/token?service=regmirror';

async function get(url, headers = {}) {
  const res = await fetch(url, { headers });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body.slice(0, 200)}`);
  return body;
}

async function main() {
  const loadStart = loadavg();
  const world = await setUp();
  const manifest = opts.only === 'tokens' ? undefined : await measureManifests(world);
  const issuance = opts.only === 'manifest' ? [] : await measureTokens(world);
  for (const k of ['off', 'on']) await stopProcess(world.servers[k], 20_000);
  await stopProcess(world.upstream);
  process.stdout.write(`${await report({ loadStart, loadEnd: loadavg(), manifest, issuance })}\n`);
  if (opts.profile) {
    for (const f of readdirSync(world.profiles).map((name) => join(world.profiles, name))) {
      process.stdout.write(`\n${f}\n${execFileSync(process.execPath, [join(root, 'bench/profile-summary.mjs'), f, '--top', '25'], { encoding: 'utf8' })}`);
    }
  }
  if (opts.keep || opts.profile) log(`kept ${work}`);
}

/** The upstream with one image, the htpasswd file, and the two mirrors, warm. */
async function setUp() {
  const logs = join(work, 'logs');
  mkdirSync(logs);
  const upstream = await startDistribution({ name: 'upstream', dir: logs, storage: join(work, 'upstream-storage') });
  await pushImage(`http://${upstream.address}`, 'library/bench-auth', '1', [randomBlobFile(join(work, 'layer'), 1 << 20)]);

  // bench reads everything; user0…userN-1 are the distinct first logins; burst logs in with many requests at once.
  const users = ['bench', 'burst', ...Array.from({ length: userCount }, (_, i) => `user${i}`)];
  const htpasswd = join(work, 'htpasswd');
  writeFileSync(htpasswd, users.map((u) => `${u}:$2y$${bcrypt.hashSync(`${u}-pw`, cost).slice(4)}`).join('\n') + '\n');
  log(`htpasswd: ${users.length} users, bcrypt cost ${cost}`);
  const sections = {
    auth: { htpasswd, groups: { readers: users }, tokenTTL: '1h' },
    access: { anonymous: ['docker.io/library/public-*'], rules: [{ repositories: ['docker.io/**'], groups: ['readers'], actions: ['read'] }] },
  };
  const profiles = join(work, 'profiles');
  const start = (name, withAuth) =>
    startRegmirror({
      name,
      dir: logs,
      storage: join(work, `${name}-storage`),
      upstream: `http://${upstream.address}`,
      root,
      sections: withAuth ? sections : {},
      nodeArgs: opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`, `--cpu-prof-name=${name}.cpuprofile`] : [],
    });
  const servers = { off: await start('auth-off', false), on: await start('auth-on', true) };
  const base = { off: `http://${servers.off.address}`, on: `http://${servers.on.address}` };

  const { token } = JSON.parse(await get(`${base.on}${TOKEN}&scope=repository:library/bench-auth:pull`, { authorization: basic('bench', 'bench-pw') }));
  const headers = { off: { Accept: MANIFEST_ACCEPT }, on: { Accept: MANIFEST_ACCEPT, Authorization: `Bearer ${token}` } };
  const unauthorised = await fetch(`${base.on}${TAG}`, { headers: headers.off });
  if (unauthorised.status !== 401) throw new Error(`auth-on answered ${unauthorised.status} without a token`);
  // Warm: the manifest fetched once through each, then served from the cache...
  for (const k of ['off', 'on']) await get(base[k] + TAG, headers[k]);
  // ...and one unrecorded wrk run each, so neither is measured while its JIT is still compiling.
  for (const k of ['off', 'on']) await wrk(base[k] + TAG, { connections, seconds: 1, headers: headers[k] });
  log('both mirrors warm');
  return { upstream, servers, base, headers, users, profiles };
}

/** The tag GET on each mirror, alternating which goes first; the rate and the server's CPU per request. */
async function measureManifests({ servers, base, headers }) {
  const rps = { off: [], on: [] };
  const cpuUs = { off: [], on: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const k of rep % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const cpu0 = cpuSeconds(servers[k]);
      const r = await wrk(base[k] + TAG, { connections, seconds, headers: headers[k] });
      rps[k].push(r.rps);
      cpuUs[k].push(((cpuSeconds(servers[k]) - cpu0) / (r.rps * seconds)) * 1e6);
    }
    log(`rep ${rep + 1}/${reps}: off ${Math.round(rps.off[rep])} req/s, on ${Math.round(rps.on[rep])} req/s`);
  }
  return { rps, cpuUs };
}

/** /v2/token on the auth-on mirror: rows of [request, tokens/s, p99 or server CPU]. */
async function measureTokens({ servers, base, users }) {
  const rows = [];
  const cases = [
    ['anonymous GET', `${TOKEN}&scope=repository:library/public-x:pull`, {}],
    ['GET with HTTP Basic (htpasswd, remembered)', `${TOKEN}&scope=repository:library/bench-auth:pull`, { Authorization: basic('bench', 'bench-pw') }],
  ];
  for (const [label, path, headers] of cases) {
    await wrk(base.on + path, { connections, seconds: 1, headers }); // unrecorded: the JIT warms up
    const r = await wrk(base.on + path, { connections, seconds, headers });
    rows.push([label, Math.round(r.rps).toLocaleString('en'), r.p99]);
    log(`${label}: ${Math.round(r.rps)} tokens/s`);
  }
  // Wall time and the server's CPU: on this shared machine the CPU says what the work cost.
  const timed = async (logins) => {
    const [cpu0, wall0] = [cpuSeconds(servers.on), process.hrtime.bigint()];
    await Promise.all(logins.map(([u, p]) => get(`${base.on}${TOKEN}&scope=repository:library/bench-auth:pull`, { authorization: basic(u, p) })));
    return { wall: Number(process.hrtime.bigint() - wall0) / 1e9, cpu: cpuSeconds(servers.on) - cpu0 };
  };
  // Every user's first login is a bcrypt check: all at once, as a fleet of new clients would.
  const first = await timed(users.slice(2).map((u) => [u, `${u}-pw`]));
  const perLogin = first.cpu / userCount;
  rows.push([`first logins: ${userCount} distinct users at once (bcrypt cost ${cost})`, (userCount / first.wall).toFixed(1), `server CPU ${(perLogin * 1000).toFixed(0)} ms per login`]);
  log(`first logins: ${(userCount / first.wall).toFixed(1)}/s, ${(perLogin * 1000).toFixed(0)} ms CPU each`);
  // One client's first requests in parallel (a pull fetching its layers with HTTP Basic): its
  // password is remembered only once a check has finished.
  const burst = await timed(Array.from({ length: connections }, () => ['burst', 'burst-pw']));
  rows.push([`one new user's first ${connections} requests at once`, (connections / burst.wall).toFixed(1), `server CPU ${burst.cpu.toFixed(2)} s ≈ ${(burst.cpu / perLogin).toFixed(1)} logins' worth`]);
  log(`burst: ${connections} in ${burst.wall.toFixed(2)} s, ${burst.cpu.toFixed(2)} s CPU`);
  return rows;
}

async function report({ loadStart, loadEnd, manifest, issuance }) {
  const fmt = (l) => l.map((x) => x.toFixed(1)).join(' / ');
  const lines = [`### Auth overhead (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} CPUs, load ${fmt(loadStart)} at the start, ${fmt(loadEnd)} at the end)`];
  if (manifest) {
    const { rps, cpuUs } = manifest;
    const ratios = rps.on.map((on, i) => on / rps.off[i]);
    const row = (label, k) => `| ${label} | ${Math.round(median(rps[k])).toLocaleString('en')} | ${median(cpuUs[k]).toFixed(0)} µs | ${rps[k].map((x) => Math.round(x)).join(', ')} |`;
    const wrkVersion = (await toolVersion('wrk', ['--version'])).split(' ').slice(0, 2).join(' ');
    lines.push(
      '',
      `Manifest GET by tag, warm, wrk ${connections} connections, ${seconds} s × ${reps} reps per mirror, alternating (${wrkVersion}):`,
      '',
      '| mirror | req/s (median) | server CPU per request (median) | req/s per rep |',
      '|---|---|---|---|',
      row('auth off', 'off'),
      row('auth on, Bearer', 'on'),
      '',
      `on ÷ off: rate ${median(ratios).toFixed(3)} (median of the per-rep ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}), ` +
        `i.e. overhead ${((1 - median(ratios)) * 100).toFixed(1)}% (target ≤ 10%); server CPU per request ${(median(cpuUs.on) / median(cpuUs.off)).toFixed(3)}×.`,
    );
  }
  if (issuance.length > 0) {
    lines.push('', `Token issuance, /v2/token on the auth-on mirror (${connections} connections, ${seconds} s):`, '', '| request | tokens/s | p99, or server CPU |', '|---|---|---|');
    lines.push(...issuance.map((r) => `| ${r.join(' | ')} |`));
  }
  return lines.join('\n');
}

exitWhenDone(main(), log);
