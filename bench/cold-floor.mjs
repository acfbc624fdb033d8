// node bench/cold-floor.mjs [--size MiB] [--reps N]
// A lower bound on the wall time of a cold blob GET through any mirror that streams while it stores
// and verifies (receives, hashes, writes to a new file and sends every byte during the client's
// transfer), on this machine, next to the reference's measured cold GET. Each part's CPU is measured
// alone with the cheapest means Node has (static buffers, 1 MiB syscalls, no HTTP parser, no streams);
// the parts' sum divided by the cores is the floor: the 2 cores also run the upstream and the client.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { curlGet } from './lib/clients.mjs';
import { cpuSeconds, startDistribution, stopAllSync, stopProcess } from './lib/procs.mjs';
import { median } from './lib/report.mjs';
import { pushImage, randomBlobFile } from './lib/seed.mjs';

const MiB = 1024 * 1024;
const { values } = parseArgs({ options: { size: { type: 'string', default: '512' }, reps: { type: 'string', default: '5' } } });
const size = Math.max(16, Math.min(2048, Number(values.size))) * MiB;
const reps = Math.max(1, Math.min(20, Number(values.reps)));
const work = mkdtempSync(join(tmpdir(), 'regmirror-floor-'));
process.on('exit', () => {
  stopAllSync();
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => process.exit(3), 10 * 60_000).unref();

const cpuOf = async (fn) => {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const hot = Buffer.alloc(MiB, 7);

const layer = randomBlobFile(join(work, 'big.layer'), size);
const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'up') });
await pushImage(`http://${upstream.address}`, 'library/floor', '1', [layer]);
const blobPath = `/v2/library/floor/blobs/${layer.digest}`;
const [host, port] = upstream.address.split(':');

/** curl from the upstream: the upstream's CPU to send the blob and curl's to take it in (bash `times`). */
async function upstreamToCurl() {
  const u0 = cpuSeconds(upstream);
  const { stdout } = await promisify(execFile)('bash', ['-c', `curl -s -o /dev/null http://${upstream.address}${blobPath}; times`]);
  const [user, sys] = stdout.trim().split('\n')[1].split(' ').map((t) => Number(/(\d+)m([\d.]+)s/.exec(t).slice(1).reduce((m, s) => m * 60 + Number(s))));
  return { upstream: cpuSeconds(upstream) - u0, curl: user + sys };
}

/** A raw socket GET of the upstream's blob into one static 1 MiB buffer: receiving, nothing else. */
const receive = () =>
  cpuOf(
    () =>
      new Promise((resolve, reject) => {
        let got = -1;
        const sock = connect({
          host,
          port: Number(port),
          onread: {
            buffer: Buffer.allocUnsafe(MiB),
            callback: (n) => {
              got += n;
              if (got >= size) sock.destroy();
              return true;
            },
          },
        });
        sock.on('connect', () => sock.write(`GET ${blobPath} HTTP/1.1\r\nHost: ${upstream.address}\r\nConnection: close\r\n\r\n`));
        sock.on('close', resolve).on('error', reject);
      }),
  );

const hashing = () => cpuOf(() => {
  const h = createHash('sha256');
  for (let left = size; left > 0; left -= MiB) h.update(hot);
  h.digest();
});

/** Into a new file, as a cold blob is, with synchronous 1 MiB writes (the kernel's copy counts as CPU). */
const fileWrite = (i) => cpuOf(() => {
  const fd = openSync(join(work, `w${i}`), 'wx');
  for (let left = size; left > 0; left -= MiB) writeSync(fd, hot);
  closeSync(fd);
  rmSync(join(work, `w${i}`));
});

/** A server that writes one hot 1 MiB buffer to curl until the size: sending, nothing else. */
async function send() {
  let cpu = 0;
  const server = createServer((s) => {
    s.on('error', () => {});
    // Reads the client's side to its end, or the socket never closes and neither does the server.
    s.resume();
    const c0 = process.cpuUsage();
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
    let left = size;
    const more = () => {
      while (left > 0) {
        left -= MiB;
        if (!s.write(hot)) return void s.once('drain', more);
      }
      s.end(() => {
        const c = process.cpuUsage(c0);
        cpu = (c.user + c.system) / 1e6;
      });
    };
    more();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  await curlGet(`http://127.0.0.1:${server.address().port}/`, size);
  await new Promise((r) => server.close(r));
  return cpu;
}

async function referenceCold(i) {
  const storage = join(work, `ref-${i}`);
  mkdirSync(storage);
  const ref = await startDistribution({ name: `ref-${i}`, dir: work, storage, proxy: `http://${upstream.address}` });
  const { seconds } = await curlGet(`http://${ref.address}${blobPath}`, size);
  await stopProcess(ref);
  rmSync(storage, { recursive: true, force: true });
  return seconds;
}

const s = { upstream: [], curl: [], receive: [], hash: [], write: [], send: [], reference: [] };
for (let i = 0; i < reps; i++) {
  const u = await upstreamToCurl();
  s.upstream.push(u.upstream);
  s.curl.push(u.curl);
  s.receive.push(await receive());
  s.hash.push(await hashing());
  s.write.push(await fileWrite(i));
  s.send.push(await send());
  s.reference.push(await referenceCold(i));
}
await stopProcess(upstream);

const cores = cpus().length;
const parts = ['upstream', 'curl', 'receive', 'hash', 'write', 'send'];
const lowest = (xs) => Math.min(...xs);
const floor = parts.reduce((sum, p) => sum + lowest(s[p]), 0) / cores;
const fmt = (xs) => xs.map((x) => x.toFixed(2)).join(', ');
process.stdout.write(`| part (CPU seconds per ${size / MiB} MiB) | lowest | median | runs |\n|---|---|---|---|\n`);
for (const p of parts) process.stdout.write(`| ${p} | ${lowest(s[p]).toFixed(2)} | ${median(s[p]).toFixed(2)} | ${fmt(s[p])} |\n`);
process.stdout.write(`| reference cold GET (wall) | ${lowest(s.reference).toFixed(3)} | ${median(s.reference).toFixed(3)} | ${fmt(s.reference)} |\n\n`);
process.stdout.write(
  `floor = sum of the lowest parts ÷ ${cores} cores = ${floor.toFixed(3)} s = ${(floor / median(s.reference)).toFixed(2)}× the reference's median cold GET ` +
    `(the bar is ≤ 0.8×)\n`,
);
process.exit(0);
