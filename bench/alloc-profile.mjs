// node bench/alloc-profile.mjs [tag|digest] [--seconds N] [--top N] >/dev/null   (after npm run build)
// Where a manifest GET's allocations go: regmirror (dist/) runs in this process, under V8's sampling
// heap profiler with the objects later collected counted too (`node --heap-prof` counts only what
// is still alive at the end, which hides per-request garbage), while `wrk -c32` asks it for one
// manifest for N seconds. Prints the bytes allocated per request and the call stacks that allocate
// most (on stderr; the server's own log lines go to stdout). In-process because the profiler's
// options are only reachable through the inspector.
import inspector from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MANIFEST_ACCEPT, wrk } from './lib/clients.mjs';
import { freePorts, startDistribution } from './lib/procs.mjs';
import { benchRun, exitWhenDone } from './lib/run.mjs';
import { pushImage, randomBlob } from './lib/seed.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '5' }, top: { type: 'string', default: '25' }, keep: { type: 'boolean', default: false } },
});
const kind = positionals[0] ?? 'tag';
if (!['tag', 'digest'].includes(kind)) {
  process.stderr.write('usage: alloc-profile.mjs [tag|digest] [--seconds N] [--top N]\n');
  process.exit(2);
}
const seconds = Math.max(1, Math.min(60, Number(values.seconds)));
const top = Math.max(1, Math.min(200, Number(values.top)));
const { work, log } = benchRun('alloc-profile', { keep: values.keep, deadlineMinutes: 5 });

async function main() {
  const upstream = await startDistribution({ name: 'upstream', dir: work, storage: join(work, 'upstream-storage') });
  const image = await pushImage(`http://${upstream.address}`, 'library/alloc', '1', [randomBlob(1024), randomBlob(2048)]);
  const [port] = await freePorts(1);
  const storage = join(work, 'mirror');
  mkdirSync(storage);
  const config = join(work, 'regmirror.json');
  writeFileSync(config, JSON.stringify({ listen: `127.0.0.1:${port}`, storage: { path: storage }, upstreams: { 'docker.io': { url: `http://${upstream.address}`, library: true } }, manifestTTL: '30m', log: { level: 'info' } }));
  process.argv = [process.execPath, join(root, 'dist/cli/main.js'), 'serve', '--config', config];
  // Not awaited: `serve` resolves only at shutdown. A missing dist/ (no `npm run build`) fails here.
  const failedToLoad = import(join(root, 'dist/cli/main.js')).then(() => new Promise(() => {}));
  const path = kind === 'tag' ? '/v2/library/alloc/manifests/1' : `/v2/library/alloc/manifests/${image.manifestDigest}`;
  const url = `http://127.0.0.1:${port}${path}`;
  await Promise.race([waitForServer(url), failedToLoad]);

  const session = new inspector.Session();
  session.connect();
  const post = (method, params) => new Promise((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r))));
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const { requests } = await wrk(url, { connections: 32, seconds, headers: { Accept: MANIFEST_ACCEPT } });
  const { profile } = await post('HeapProfiler.stopSampling');
  if (!(requests > 0)) throw new Error('wrk output without a request count');

  const stacks = new Map();
  let total = 0;
  const walk = (node, below) => {
    const f = node.callFrame;
    const frame = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
    const stack = [frame, ...below];
    total += node.selfSize;
    if (node.selfSize > 0) {
      const key = stack.slice(0, 4).join(' < ');
      stacks.set(key, (stacks.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, stack);
  };
  walk(profile.head, []);
  let report = `${kind} GETs: ${requests} requests in ${seconds} s under the profiler; ${(total / requests / 1024).toFixed(1)} KiB allocated per request\n\nbytes/request  stack (innermost first, 4 frames)\n`;
  for (const [stack, bytes] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, top)) report += `${String(Math.round(bytes / requests)).padStart(13)}  ${stack}\n`;
  writeFileSync(join(work, 'report.txt'), report);
  process.stderr.write(report);
  log('done');
}

async function waitForServer(url) {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url, { headers: { Accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      if (res.ok) return;
      throw new Error(`GET ${url}: ${res.status}`);
    } catch (err) {
      if (i >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

exitWhenDone(main(), log);
