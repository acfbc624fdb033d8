// Servers under test as real child processes: started, awaited until they print their address,
// measured through /proc, and stopped by PID only.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const running = new Set();

/** Every child still running; run.mjs stops them on any exit path. */
export function stopAllSync() {
  for (const proc of running) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

/**
 * Spawns `cmd args` with stdout and stderr appended to `logFile` and waits (bounded) until the log
 * matches `ready`, whose first capture group is the listen address.
 */
export async function startProcess({ name, cmd, args, logFile, ready, env, timeoutMs = 15_000 }) {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  let exited = null;
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const proc = { name, pid: child.pid, logFile, address: '', exitPromise };
  running.add(proc);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) break;
    const m = ready.exec(readFileSync(logFile, 'utf8'));
    if (m) {
      proc.address = m[1];
      return proc;
    }
    await sleep(25);
  }
  await stopProcess(proc);
  const tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  throw new Error(`${name} did not become ready (${exited ? `exited ${JSON.stringify(exited)}` : 'timeout'}); log tail:\n${tail}`);
}

/** SIGTERM, then SIGKILL after a bounded wait; always by this child's PID. */
export async function stopProcess(proc, graceMs = 10_000) {
  if (!running.has(proc)) return;
  running.delete(proc);
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([proc.exitPromise, timer])) === 'timeout') {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
    await proc.exitPromise;
  }
}

/** Peak resident set size (VmHWM) of a running process, in bytes. */
export function peakRss(proc) {
  const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmHWM for ${proc.name} (${proc.pid})`);
  return Number(m[1]) * 1024;
}

/**
 * CPU seconds (user + system, all threads) a process used so far. On a shared, noisy machine the
 * CPU a server spends per byte moves much less than its wall time.
 */
export function cpuSeconds(proc) {
  const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
// USER_HZ is 100 on every Linux architecture Node supports.
const CLOCK_TICKS = 100;

/**
 * Seconds on a CPU and seconds runnable but waiting for one (the run queue), from schedstat, of the
 * main thread and of every thread now alive: on a loaded machine the wait is the time other
 * processes took, which CPU seconds do not show.
 */
export function schedSeconds(proc) {
  const read = (tid) => readFileSync(`/proc/${proc.pid}/task/${tid}/schedstat`, 'utf8').split(' ').map((n) => Number(n) / 1e9);
  const [mainCpu, mainWait] = read(proc.pid);
  let cpu = 0;
  let wait = 0;
  for (const tid of readdirSync(`/proc/${proc.pid}/task`)) {
    try {
      const [c, w] = read(tid);
      cpu += c;
      wait += w;
    } catch {
      // the thread exited meanwhile
    }
  }
  return { mainCpu, mainWait, cpu, wait };
}

/**
 * The CNCF distribution registry; `proxy` makes it a pull-through cache of that URL. `netns` runs it
 * inside that network namespace (`ip netns exec` execs in place: the PID is the registry's), where
 * `host` is one of the namespace's addresses. `tls` ({ cert, key } files) serves https; `trust` (a
 * CA file) is what it trusts as a proxy's client (Go reads SSL_CERT_FILE).
 */
export async function startDistribution({ name, dir, storage, proxy, netns, host = '127.0.0.1', tls, trust }) {
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  cache:',
    '    blobdescriptor: inmemory',
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}:0`,
    '  secret: regmirror-bench',
    ...(tls ? ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`] : []),
    ...(proxy ? ['proxy:', `  remoteurl: ${proxy}`] : []),
    '',
  ].join('\n');
  const configFile = join(dir, `${name}.yml`);
  writeFileSync(configFile, config);
  const cmd = ['docker-registry', 'serve', configFile];
  return startProcess({
    name,
    cmd: netns ? 'ip' : cmd[0],
    args: netns ? ['netns', 'exec', netns, ...cmd] : cmd.slice(1),
    logFile: join(dir, `${name}.log`),
    ready: new RegExp(`listening on (${host.replaceAll('.', '\\.')}:\\d+)`),
    ...(trust ? { env: { SSL_CERT_FILE: trust } } : {}),
  });
}

/** The environment and node flags of package.json's `start` script, so the bench runs what users run. */
export function startCommand(root) {
  const start = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.start;
  const m = /^((?:[A-Z_]+=\S+ )*)node ((?:--\S+ )*)dist\/cli\/main\.js /.exec(start);
  if (!m) throw new Error(`package.json's start script is not "[VAR=value ...] node [flags] dist/cli/main.js ...": ${start}`);
  const env = Object.fromEntries(m[1].split(' ').filter(Boolean).map((kv) => kv.split('=', 2)));
  return { env, flags: m[2].split(' ').filter(Boolean) };
}

/** The node flags of the `start` script (between `node` and the script). */
export function startNodeFlags(root) {
  return startCommand(root).flags;
}

/**
 * regmirror from dist/, as `npm start` runs it (its node flags too); `nodeArgs` adds e.g. --cpu-prof,
 * `sections` more top-level config sections (auth, access, …).
 */
export async function startRegmirror({ name, dir, storage, upstream, root, nodeArgs = [], sections = {} }) {
  const configFile = join(dir, `${name}.json`);
  const config = {
    listen: '127.0.0.1:0',
    upstreams: { 'docker.io': { url: upstream, library: true } },
    // Long enough that every tag request of a run is inside the TTL.
    manifestTTL: '30m',
    log: { level: 'info' },
    ...sections,
    storage: { ...sections.storage, path: storage },
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return startProcess({
    name,
    cmd: process.execPath,
    args: [...startCommand(root).flags, ...nodeArgs, join(root, 'dist/cli/main.js'), 'serve', '--config', configFile],
    env: startCommand(root).env,
    logFile: join(dir, `${name}.log`),
    ready: /"address":"(127\.0\.0\.1:\d+)".*"msg":"regmirror listening"/,
  });
}

/** The plain Node file server of bench/file-server.mjs, serving one file. */
export async function startFileServer({ dir, file, root }) {
  return startProcess({
    name: 'file-server',
    cmd: process.execPath,
    args: [join(root, 'bench/file-server.mjs'), file],
    logFile: join(dir, 'file-server.log'),
    ready: /listening (127\.0\.0\.1:\d+)/,
  });
}

/**
 * `n` distinct free loopback ports, for servers that must know each other's address before they
 * start (cluster.peers, redis-server, which cannot pick its own). Held open together so no two
 * are the same; something else may still take one before it is used, and that start then fails.
 */
/**
 * A diagnostic for this VM, not how users run: writes and removes 1 GiB in `dir`, so the next
 * writes land in page-cache pages the hypervisor has just backed. Pages freed for ~2 s go back to
 * the host (virtio-balloon free page reporting), and writing into them again costs ~1 s of system
 * CPU per 512 MiB against ~0.08 s (BENCHMARKS.md, "Cold GET: the cost of fresh pages").
 */
export function recyclePages(dir) {
  const file = join(dir, 'recycle-pages');
  execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=1024', 'conv=fsync', 'status=none']);
  rmSync(file);
}

export async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** A private redis-server on 127.0.0.1:`port`, no persistence, its files in `dir`. */
export async function startRedis({ name, dir, port }) {
  const proc = await startProcess({
    name,
    cmd: 'redis-server',
    args: ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    logFile: join(dir, `${name}.log`),
    ready: /(Ready) to accept connections/,
  });
  proc.address = `127.0.0.1:${port}`;
  return proc;
}
