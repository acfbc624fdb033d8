// A pulling client in-process: the manifest by tag, then every blob it names, a few at a time (as
// a container runtime pulls layers), each body hashed as it arrives and checked against its
// descriptor. Node's http, so 48 clients do not need 48 × 9 curl processes on a 2-core machine.
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { MANIFEST_ACCEPT } from './clients.mjs';
import { median } from './report.mjs';

/** GET `url`; the body is hashed (and kept only when `keep`), a stalled body fails after `idleMs`. */
function hashedGet(url, { agent, headers = {}, keep = false, idleMs }) {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      const hash = createHash('sha256');
      const parts = [];
      let bytes = 0;
      res.on('data', (chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (keep) parts.push(chunk);
      });
      res.once('end', () => {
        if (!res.complete) reject(new Error(`GET ${url}: body cut short after ${bytes} bytes`));
        else resolve({ status: res.statusCode, bytes, digest: `sha256:${hash.digest('hex')}`, body: keep ? Buffer.concat(parts) : undefined });
      });
      res.once('error', reject);
    });
    req.setTimeout(idleMs, () => req.destroy(new Error(`GET ${url}: nothing for ${idleMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

/**
 * Pulls `repo:tag` from `base`: the manifest, then config and layers, `parallel` at a time, every
 * one verified (status, size, sha256). A complete 200 body whose sha256 is not its digest is
 * counted in `wrongDigests` (the pull goes on, so a run can say how many); anything else fails the
 * pull, as does taking longer than `timeoutMs` in all. Returns the seconds it took and the blob
 * bytes received.
 */
export async function pullImage(base, repo, tag, { parallel = 3, idleMs = 120_000, timeoutMs = 30 * 60_000 } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  const started = process.hrtime.bigint();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    agent.destroy();
  }, timeoutMs);
  try {
    const m = await hashedGet(`${base}/v2/${repo}/manifests/${tag}`, { agent, headers: { Accept: MANIFEST_ACCEPT }, keep: true, idleMs });
    if (m.status !== 200) throw new Error(`manifest ${repo}:${tag} from ${base}: ${m.status} ${m.body.toString().slice(0, 200)}`);
    const manifest = JSON.parse(m.body.toString());
    const queue = [manifest.config, ...manifest.layers];
    let bytes = 0;
    let wrongDigests = 0;
    const worker = async () => {
      for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
        const got = await hashedGet(`${base}/v2/${repo}/blobs/${d.digest}`, { agent, idleMs });
        if (got.status !== 200 || got.bytes !== d.size) throw new Error(`blob ${d.digest} from ${base}: status ${got.status}, ${got.bytes} of ${d.size} bytes`);
        if (got.digest !== d.digest) wrongDigests += 1;
        bytes += got.bytes;
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes, wrongDigests };
  } catch (err) {
    throw timedOut ? new Error(`pull of ${repo}:${tag} from ${base} took over ${timeoutMs} ms: ${err.message}`) : err;
  } finally {
    clearTimeout(timer);
    agent.destroy();
  }
}

/**
 * `clients` pulls of `repo:tag` at once, client i from `bases[i % bases.length]`: the wall time from
 * the first request to the last verified byte, each client's time, the blob bodies with a wrong
 * sha256, and the pulls that failed outright.
 */
export async function pullMany(bases, repo, tag, { clients, ...options }) {
  const started = process.hrtime.bigint();
  const pulls = await Promise.allSettled(Array.from({ length: clients }, (_, i) => pullImage(bases[i % bases.length], repo, tag, options)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const done = pulls.filter((p) => p.status === 'fulfilled').map((p) => p.value);
  const failures = pulls.filter((p) => p.status === 'rejected').map((p) => p.reason);
  const clientSeconds = done.map((p) => p.seconds);
  return {
    seconds,
    clientP50: median(clientSeconds),
    clientMax: clientSeconds.length ? Math.max(...clientSeconds) : NaN,
    wrongDigests: done.reduce((n, p) => n + p.wrongDigests, 0),
    failures,
  };
}
