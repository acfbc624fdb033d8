// The 200-client mixed load of bench/connections.mjs and bench/memory.mjs: the workload, the load
// generator child (bench/lib/load-client.mjs) and what is sampled on the server meanwhile.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MANIFEST_ACCEPT } from './clients.mjs';
import { cpuSeconds } from './procs.mjs';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

/**
 * What a busy mirror sees: manifest GETs by tag and by digest, small blob GETs, and HEADs that close
 * their connection (so new connections keep arriving); the probe is a manifest GET by digest.
 */
export function mixedWorkload(image) {
  const manifest = `/v2/${image.repo}/manifests`;
  const layer = image.blobs[image.blobs.length - 1];
  const accept = { Accept: MANIFEST_ACCEPT };
  return {
    mix: [
      { kind: 'tag', weight: 30, method: 'GET', path: `${manifest}/${image.tag}`, headers: accept },
      { kind: 'digest', weight: 25, method: 'GET', path: `${manifest}/${image.manifestDigest}`, headers: accept },
      { kind: 'blob', weight: 25, method: 'GET', path: `/v2/${image.repo}/blobs/${layer.digest}` },
      { kind: 'head', weight: 20, method: 'HEAD', path: `${manifest}/${image.manifestDigest}`, headers: accept, close: true },
    ],
    probe: { kind: 'probe', method: 'GET', path: `${manifest}/${image.manifestDigest}`, headers: accept, close: true },
  };
}

/** Resident set size now (VmRSS) and its peak so far (VmHWM), in bytes. */
export function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Connections waiting in the accept queue of the listener on 127.0.0.1:`port` (rx_queue of a LISTEN socket). */
export function acceptQueue(port) {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === want && f[3] === '0A') return parseInt(f[4].split(':')[1], 16);
  }
  return 0;
}

/**
 * Runs the load generator against `address` (host:port) and samples the server (`pids`: every
 * process that serves it) every 100 ms: RSS summed over them, and the accept queue.
 */
export async function runLoad(address, pids, { clients = 200, seconds = 15, warmupSeconds = 3, workload, probeEveryMs = 100, thinkMs = 0 }) {
  const [host, port] = address.split(':');
  const cfg = { host, port: Number(port), clients, seconds, warmupSeconds, ...workload, probeEveryMs, thinkMs };
  let peakRss = 0;
  let maxQueue = 0;
  const queue = [];
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, pids.reduce((a, pid) => a + rss(pid).now, 0));
      const q = acceptQueue(Number(port));
      maxQueue = Math.max(maxQueue, q);
      queue.push(q);
    } catch {
      // a process ended: the run reports what it saw
    }
  }, 100);
  const cpu0 = pids.reduce((a, pid) => a + cpuSeconds({ pid }), 0);
  try {
    const { stdout } = await run(process.execPath, [join(here, 'load-client.mjs'), JSON.stringify(cfg)], { timeout: (seconds + warmupSeconds + 30) * 1000, maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout.trim().split('\n').pop());
    queue.sort((a, b) => a - b);
    const cpu = pids.reduce((a, pid) => a + cpuSeconds({ pid }), 0) - cpu0;
    return { ...result, peakRss, maxQueue, medianQueue: queue[Math.floor(queue.length / 2)] ?? 0, cpuPerRequestUs: (cpu / result.requests) * 1e6 };
  } finally {
    clearInterval(sampler);
  }
}
