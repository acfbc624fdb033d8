// node bench/lib/load-client.mjs '<json>'   (spawned by bench/connections.mjs and bench/memory.mjs)
// A closed-loop HTTP/1.1 load generator on raw sockets, in its own process so the server under test
// and the client do not share an event loop. `clients` connections each send requests picked from
// `mix` back to back; requests marked `close` send `Connection: close` and the client reconnects for
// its next one (docker and containerd open new connections per pull). Each client pauses a random
// time (mean `thinkMs`) between requests, so the offered load is bounded, as from real pullers. A probe opens a fresh
// connection every `probeEveryMs` for one `probe` request and times connect → first response byte.
// Bounded in time (`seconds`) and count; loopback only. Prints one JSON summary line on stdout.
import { connect } from 'node:net';

const cfg = JSON.parse(process.argv[2]);
const { host, port, clients, seconds, warmupSeconds = 0, mix, probe, probeEveryMs = 100, thinkMs = 0, maxRequests = 5_000_000 } = cfg;
if (!/^127\.|^localhost$|^::1$/.test(host)) throw new Error(`loopback only, not ${host}`);

const weights = mix.reduce((a, m) => a + m.weight, 0);
const pick = () => {
  let r = Math.random() * weights;
  for (const m of mix) if ((r -= m.weight) < 0) return m;
  return mix[mix.length - 1];
};
const wire = (r) =>
  Buffer.from(`${r.method} ${r.path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: regmirror-bench\r\n${Object.entries(r.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('')}${r.close ? 'Connection: close\r\n' : ''}\r\n`);
for (const m of [...mix, probe]) m.bytes = wire(m);

const t0 = performance.now();
const warmEnd = t0 + warmupSeconds * 1000;
const stopAt = warmEnd + seconds * 1000;
let stopping = false;
const stats = { requests: 0, errors: 0, badStatus: 0, newConnections: 0, lastError: '' };
const kept = {}; // kind -> latencies (ms) of requests on an already open connection
const fresh = []; // latencies of first requests on a new connection, from connect() to first byte
const probes = []; // probe TTFB (ms)
const record = (list, v) => {
  if (performance.now() >= warmEnd) list.push(v);
};

/**
 * One response off a socket: resolves { status, firstByteAt } after the whole body arrived.
 * Minimal parser: status line, Content-Length, no chunked encoding (registries send lengths).
 */
function exchange(sock, req) {
  return new Promise((resolve, reject) => {
    let head = null;
    let firstByteAt = 0;
    let need = -1;
    let status = 0;
    const onData = (chunk) => {
      if (!firstByteAt) firstByteAt = performance.now();
      if (need < 0) {
        head = head ? Buffer.concat([head, chunk]) : chunk;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        status = Number(text.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        need = req.method === 'HEAD' || status === 304 ? 0 : m ? Number(m[1]) : 0;
        need -= head.length - end - 4;
        head = null;
      } else need -= chunk.length;
      if (need <= 0) done(null);
    };
    const onError = (e) => done(e);
    const onClose = () => done(new Error('closed before the response ended'));
    const done = (err) => {
      sock.off('data', onData);
      sock.off('error', onError);
      sock.off('close', onClose);
      if (err) reject(err);
      else resolve({ status, firstByteAt });
    };
    sock.on('data', onData);
    sock.on('error', onError);
    sock.on('close', onClose);
    sock.write(req.bytes);
  });
}

function open() {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, noDelay: true });
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

async function client() {
  let sock = null;
  while (!stopping && stats.requests < maxRequests) {
    const req = pick();
    const started = performance.now();
    const isNew = sock === null;
    try {
      if (isNew) {
        sock = await open();
        stats.newConnections++;
      }
      const { status, firstByteAt } = await exchange(sock, req);
      stats.requests++;
      if (status < 200 || status >= 400) stats.badStatus++;
      if (isNew) record(fresh, firstByteAt - started);
      else record((kept[req.kind] ??= []), performance.now() - started);
    } catch (err) {
      if (stopping) break;
      stats.errors++;
      stats.lastError = String(err.message ?? err);
      sock?.destroy();
      sock = null;
      continue;
    }
    if (req.close) {
      sock.destroy();
      sock = null;
    }
    // A pause between requests (uniform, mean thinkMs), as a puller between its requests.
    if (thinkMs > 0) await new Promise((r) => setTimeout(r, Math.random() * 2 * thinkMs));
  }
  sock?.destroy();
}

async function prober() {
  while (!stopping) {
    const started = performance.now();
    try {
      const sock = await open();
      const { status, firstByteAt } = await exchange(sock, probe);
      sock.destroy();
      if (status !== 200) stats.badStatus++;
      record(probes, firstByteAt - started);
    } catch (err) {
      if (stopping) break;
      stats.errors++;
      stats.lastError = String(err.message ?? err);
    }
    const wait = probeEveryMs - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const summary = (xs) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100) });

const all = [...Array.from({ length: clients }, client), ...(probe ? [prober()] : [])];
setTimeout(() => {
  stopping = true;
}, stopAt - performance.now());
// Sockets still waiting for an answer at the end are cut: the run must end on time.
const hard = setTimeout(() => finish(true), stopAt - performance.now() + 5_000);
await Promise.all(all);
finish(false);

function finish(cut) {
  clearTimeout(hard);
  const measured = (performance.now() - warmEnd) / 1000;
  const keptAll = Object.values(kept).flat();
  const out = {
    seconds: measured,
    requests: stats.requests,
    rps: stats.requests / (performance.now() - t0) * 1000,
    newConnectionsPerSecond: stats.newConnections / ((performance.now() - t0) / 1000),
    errors: stats.errors,
    badStatus: stats.badStatus,
    lastError: stats.lastError,
    cut,
    probe: summary(probes),
    fresh: summary(fresh),
    kept: summary(keptAll),
    keptByKind: Object.fromEntries(Object.entries(kept).map(([k, xs]) => [k, summary(xs)])),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}
