// npm run build && node bench/startup.mjs [--blobs N] [--reps N] [--keep]
// Start-up time with a large cache (the target: 100,000 cached blobs ready in <= 3 s). Generates a store
// of N small blob files, their metadata records and a cache-index snapshot under a temp dir, then
// times App.start() (recovery, reconcile, metadata load, listening) to the first 200 from /readyz.
// Runs twice per repetition: with the index snapshot (every normal restart) and without it (the
// first start of this version, or a torn snapshot: every file is adopted, its size taken from its
// metadata record, a stat only for files without one).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { App } from '../dist/app.js';
import { parseConfig } from '../dist/config/index.js';
import { median } from './lib/report.mjs';

const { values: opts } = parseArgs({
  options: { blobs: { type: 'string', default: '100000' }, reps: { type: 'string', default: '5' }, keep: { type: 'boolean', default: false } },
});
const N = Math.max(1, Math.min(1_000_000, Number(opts.blobs)));
const REPS = Math.max(1, Math.min(20, Number(opts.reps)));
const dir = mkdtempSync(join(tmpdir(), 'regmirror-startup-'));
const storage = join(dir, 'data');

function generate() {
  const t0 = performance.now();
  const blobsDir = join(storage, 'v1', 'blobs', 'sha256');
  for (let s = 0; s < 256; s++) mkdirSync(join(blobsDir, s.toString(16).padStart(2, '0')), { recursive: true });
  mkdirSync(join(storage, 'v1', 'tmp'), { recursive: true });
  const log = [];
  const rows = [];
  const now = Date.now();
  for (let i = 0; i < N; i++) {
    const bytes = randomBytes(64 + (i % 64));
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(blobsDir, hex.slice(0, 2), hex), bytes);
    const digest = `sha256:${hex}`;
    // Exactly what KeyvMetadataStore writes: keyv's serialised {value} as the log value.
    log.push(JSON.stringify({ k: `regmirror:blob:${digest}`, v: JSON.stringify({ value: { size: bytes.length, upstreams: ['docker.io'] } }) }));
    rows.push([digest, bytes.length, now - (N - i) * 1000, [i % 100]]);
  }
  writeFileSync(join(storage, 'v1', 'metadata.log'), `${log.join('\n')}\n`);
  const snapshot = JSON.stringify({ v: 1, savedAt: now, repos: Array.from({ length: 100 }, (_, i) => `docker.io/team/app${i}`), blobs: rows });
  writeFileSync(join(storage, 'v1', 'cache-index.json'), snapshot);
  return { seconds: (performance.now() - t0) / 1000, snapshot };
}

function readyz(port) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

const config = parseConfig(
  { listen: '127.0.0.1:0', storage: { path: storage, maxSize: '100GiB' }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, log: { level: 'silent' } },
  { baseDir: dir, env: {} },
);

async function timeStart() {
  const app = new App(config);
  const t0 = performance.now();
  const address = await app.start();
  const status = await readyz(address.port);
  const seconds = (performance.now() - t0) / 1000;
  const blobs = (await app.metrics.cacheBlobs.get()).values[0]?.value;
  await app.close(0);
  if (status !== 200 || blobs !== N) throw new Error(`not ready (${status}) or wrong count (${blobs})`);
  return seconds;
}

try {
  const generated = generate();
  console.log(`generated ${N} blobs in ${generated.seconds.toFixed(1)} s; load ${loadavg().map((l) => l.toFixed(1)).join(' / ')}, ${cpus().length} cores`);
  const withIndex = [];
  const withoutIndex = [];
  for (let r = 0; r < REPS; r++) {
    writeFileSync(join(storage, 'v1', 'cache-index.json'), generated.snapshot);
    withIndex.push(await timeStart());
    await rm(join(storage, 'v1', 'cache-index.json'), { force: true });
    withoutIndex.push(await timeStart());
  }
  const fmt = (xs) => `median ${median(xs).toFixed(2)} s (runs: ${xs.map((x) => x.toFixed(2)).join(', ')})`;
  console.log(`start to ready, ${N} blobs, with the index snapshot:    ${fmt(withIndex)}`);
  console.log(`start to ready, ${N} blobs, without it (adopt all):    ${fmt(withoutIndex)}`);
} finally {
  if (!opts.keep) rmSync(dir, { recursive: true, force: true });
}
