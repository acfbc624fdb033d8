// The load generators: curl for blobs (a C client, so the client is not what is measured),
// skopeo for image pulls, wrk (and ab for HEAD) for request rates. All against loopback only.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** One GET with curl to /dev/null; throws unless the full `expectedSize` arrived with a 200. */
export async function curlGet(url, expectedSize, timeoutMs = 300_000) {
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '--max-time', String(timeoutMs / 1000), '-w', '%{http_code} %{size_download} %{time_total}', url], {
    timeout: timeoutMs + 5_000,
  });
  const [code, size, total] = stdout.trim().split(' ');
  if (code !== '200' || Number(size) !== expectedSize) throw new Error(`GET ${url}: status ${code}, ${size} of ${expectedSize} bytes`);
  return { seconds: Number(total), bytes: Number(size) };
}

/** `n` concurrent GETs; the wall time from the first spawn to the last complete body. */
export async function concurrentGets(url, expectedSize, n) {
  const started = process.hrtime.bigint();
  const results = await Promise.allSettled(Array.from({ length: n }, () => curlGet(url, expectedSize)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) throw new Error(`${failed.length} of ${n} concurrent GETs failed: ${failed[0].reason.message}`);
  return { seconds };
}

/** Streams a URL through sha256 (untimed): a fast answer must also be the right one. */
export function sha256Of(url) {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      const hash = createHash('sha256');
      res.on('data', (c) => hash.update(c));
      res.on('end', () => resolve(`sha256:${hash.digest('hex')}`));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** skopeo with its own empty registries.conf and an accept-anything policy, isolated from the host. */
export function skopeoEnv(dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  writeFileSync(join(dir, 'registries.conf'), '');
  return { dir, policy: join(dir, 'policy.json'), registriesConf: join(dir, 'registries.conf') };
}

/** `skopeo copy docker://HOST/REF dir:…` and its wall time; the copy is deleted afterwards. */
export async function skopeoCopy(env, host, ref) {
  const dest = join(env.dir, `copy-${process.hrtime.bigint()}`);
  const started = process.hrtime.bigint();
  try {
    await run('skopeo', ['--policy', env.policy, 'copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${ref}`, `dir:${dest}`], {
      env: { ...process.env, CONTAINERS_REGISTRIES_CONF: env.registriesConf },
      timeout: 300_000,
    });
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}

/** wrk at `connections` for `seconds`; requests per second, failing on any error or non-2xx. */
export async function wrk(url, { connections, seconds, threads = 2, headers = {} }) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`wrk output without a rate:\n${stdout}`);
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const errors = /Socket errors: (.*)/.exec(stdout);
  if (bad) throw new Error(`wrk ${url}: ${bad[1]} non-2xx responses`);
  const p99 = /^\s+99%\s+(\S+)/m.exec(stdout);
  const requests = /(\d+) requests in/.exec(stdout);
  return { rps: Number(rps[1]), requests: Number(requests?.[1] ?? NaN), p99: p99?.[1] ?? '', socketErrors: errors?.[1] ?? '' };
}

/**
 * ApacheBench for HEAD: wrk's response parser does not know a HEAD response has no body, waits for
 * Content-Length bytes and never completes a request. ab -i does HEAD right; -k keeps connections alive.
 */
export async function abHead(url, { connections, seconds, headers = {} }) {
  const args = ['-q', '-k', '-i', '-l', '-c', String(connections), '-t', String(seconds), '-n', '100000000'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const { stdout } = await run('ab', args, { timeout: (seconds + 30) * 1000, maxBuffer: 1 << 20 });
  const rps = /Requests per second:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`ab output without a rate:\n${stdout}`);
  const failed = /Failed requests:\s+(\d+)/.exec(stdout);
  const non2xx = /Non-2xx responses:\s+(\d+)/.exec(stdout);
  if ((failed && failed[1] !== '0') || non2xx) throw new Error(`ab ${url}: failed ${failed?.[1]}, non-2xx ${non2xx?.[1] ?? 0}\n${stdout}`);
  return { rps: Number(rps[1]) };
}

export async function toolVersion(cmd, args) {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 10_000 });
    return (stdout || stderr).split('\n')[0].trim();
  } catch (err) {
    // wrk prints its version with a usage text and exit code 1
    return String(err.stdout || err.stderr || err.message).split('\n')[0].trim();
  }
}
