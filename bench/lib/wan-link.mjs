// A shaped link to a process in its own network namespace: `ip netns add`, a veth pair with one end
// inside, addresses from the 198.18.0.0/15 benchmarking range (RFC 2544, never routed), and a tc tbf
// qdisc on each end's egress. The kernel here has tbf but not netem: a rate limit, no added delay.
// Everything is named after the PID of the run that made it, and removed by `destroySync`, which is
// safe to call from an exit handler (synchronous, idempotent, never throws).
import { execFileSync } from 'node:child_process';

const PREFIX = 'rmwan';

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** The first line a failed command wrote, to say why in one line. */
export function why(err) {
  if (err.code === 'ENOENT') return `${err.path ?? 'command'} not found`;
  return String(err.stderr || err.message).trim().split('\n')[0];
}

const pidAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

/**
 * Removes what an earlier run of this bench left when it was killed before its exit handler ran:
 * namespaces and links named after a PID that no longer runs. Processes still inside such a
 * namespace (an orphaned upstream) are stopped by their PIDs first. Returns what was removed.
 */
export function cleanLeftovers() {
  const removed = [];
  let names = [];
  try {
    names = run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]);
  } catch {
    return removed;
  }
  for (const ns of names) {
    const m = new RegExp(`^${PREFIX}(\\d+)$`).exec(ns);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // none left, or already gone
    }
    removeQuietly('ip', ['link', 'del', `${ns}h`]);
    removeQuietly('ip', ['netns', 'del', ns]);
    removed.push(ns);
  }
  for (const line of run('ip', ['-o', 'link', 'show']).split('\n')) {
    const m = new RegExp(`^\\d+: (${PREFIX}(\\d+)[hn])[@:]`).exec(line);
    if (!m || pidAlive(Number(m[2]))) continue;
    removeQuietly('ip', ['link', 'del', m[1]]);
    removed.push(m[1]);
  }
  return removed;
}

function removeQuietly(cmd, args) {
  try {
    run(cmd, args);
  } catch {
    // already gone
  }
}

const toIp = (n) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const BASE = (198 << 24) | (18 << 16); // 198.18.0.0/15: 32768 blocks of /30

/** A /30 inside 198.18.0.0/15 that no interface on the host uses, picked from the PID so two runs differ. */
function freeBlock() {
  const used = run('ip', ['-4', '-o', 'addr', 'show']);
  for (let i = 0; i < 32768; i++) {
    const block = (BASE + ((process.pid + i) % 32768) * 4) >>> 0;
    const [host, inside] = [toIp(block + 1), toIp(block + 2)];
    if (!used.includes(` ${host}/`) && !used.includes(` ${inside}/`)) return { host, inside };
  }
  throw new Error('no free /30 in 198.18.0.0/15');
}

export class WanLink {
  constructor({ rate, burst, latency }) {
    this.ns = `${PREFIX}${process.pid}`;
    this.hostDev = `${this.ns}h`;
    this.nsDev = `${this.ns}n`;
    this.shape = { rate, burst, latency };
    this.created = false;
  }

  /**
   * Creates the namespace (throws with `skip` set when that is not permitted: not root, no `ip`),
   * then the veth pair, the addresses and the qdiscs (throws with `skip` set when tbf is missing).
   */
  create() {
    try {
      run('ip', ['netns', 'add', this.ns]);
    } catch (err) {
      throw Object.assign(new Error(`could not create a network namespace (root needed): ip netns add: ${why(err)}`), { skip: true });
    }
    this.created = true;
    const { host, inside } = freeBlock();
    this.hostAddr = host;
    this.nsAddr = inside;
    const inNs = (...args) => run('ip', ['netns', 'exec', this.ns, ...args]);
    run('ip', ['link', 'add', this.hostDev, 'type', 'veth', 'peer', 'name', this.nsDev, 'netns', this.ns]);
    run('ip', ['addr', 'add', `${host}/30`, 'dev', this.hostDev]);
    run('ip', ['link', 'set', this.hostDev, 'up']);
    inNs('ip', 'addr', 'add', `${inside}/30`, 'dev', this.nsDev);
    inNs('ip', 'link', 'set', this.nsDev, 'up');
    inNs('ip', 'link', 'set', 'lo', 'up');
    const tbf = ['root', 'tbf', 'rate', this.shape.rate, 'burst', this.shape.burst, 'latency', this.shape.latency];
    try {
      // Egress of the namespace's end is the upstream → mirror direction (the blob bytes);
      // egress of the host's end the mirror → upstream one (requests and ACKs).
      inNs('tc', 'qdisc', 'add', 'dev', this.nsDev, ...tbf);
      run('tc', ['qdisc', 'add', 'dev', this.hostDev, ...tbf]);
    } catch (err) {
      throw Object.assign(new Error(`tc qdisc add … tbf failed: ${why(err)}`), { skip: true });
    }
  }

  describe() {
    const { rate, burst, latency } = this.shape;
    return (
      `tc tbf rate ${rate} burst ${burst} latency ${latency} on both directions: upstream → mirror on ${this.nsDev} ` +
      `(egress, inside namespace ${this.ns}), mirror → upstream on ${this.hostDev} (egress, host side); ` +
      `${this.hostAddr}/30 host side, ${this.nsAddr}/30 inside`
    );
  }

  /** Bytes sent, packets dropped and overlimits of the upstream → mirror qdisc. */
  stats() {
    const out = run('ip', ['netns', 'exec', this.ns, 'tc', '-s', 'qdisc', 'show', 'dev', this.nsDev]);
    const m = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(out);
    return m ? { bytes: Number(m[1]), packets: Number(m[2]), dropped: Number(m[3]), overlimits: Number(m[4]) } : undefined;
  }

  /** Deleting the host end deletes the pair and both qdiscs; the namespace goes with `netns del`. */
  destroySync() {
    if (!this.created) return;
    this.created = false;
    removeQuietly('ip', ['link', 'del', this.hostDev]);
    removeQuietly('ip', ['netns', 'del', this.ns]);
  }

  /** What of this run is still visible in `ip netns list` and `ip link`, for the closing check. */
  leftovers() {
    const names = `${run('ip', ['netns', 'list'])}\n${run('ip', ['-o', 'link', 'show'])}`;
    return [this.ns, this.hostDev].filter((n) => new RegExp(`(^|\\s)${n}([@:\\s]|$)`, 'm').test(names));
  }
}
