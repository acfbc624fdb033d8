// What the two rollout benches share (bench/cluster.mjs: three replicas; bench/rollout.mjs: one
// mirror): their command line, and an upstream holding the new 8-layer image everyone pulls.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDistribution } from './procs.mjs';
import { benchRun } from './run.mjs';
import { pushRolloutImage } from './seed.mjs';
import { UpstreamLog } from './upstream-log.mjs';

const MiB = 1024 * 1024;
export const ROLLOUT_REPO = 'library/bench-rollout';

/**
 * `[--quick] [--reps N] [--size MiB] [--clients N] [--parallel N] [--keep]` plus `extra` options,
 * clamped to sane bounds, and the run's work directory (with `logs/`), logger and deadline.
 */
export function rolloutRun(name, { extra = {}, quickClients = 48, deadlineMinutes }) {
  const { values: opts } = parseArgs({
    options: {
      size: { type: 'string' },
      clients: { type: 'string' },
      parallel: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      keep: { type: 'boolean', default: false },
      ...extra,
    },
  });
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, Math.floor(Number(v))));
  const config = {
    reps: clamp(opts.reps ?? 1, 1, 10),
    size: clamp(opts.size ?? (opts.quick ? 8 : 512), 1, 4096) * MiB,
    clients: clamp(opts.clients ?? (opts.quick ? quickClients : 48), 1, 256),
    // dockerd's max-concurrent-downloads default; containerd pulls layers in parallel too.
    parallel: clamp(opts.parallel, 1, 16),
  };
  const { work, log } = benchRun(name, { keep: opts.keep, deadlineMinutes: opts.quick ? 3 : deadlineMinutes });
  const logs = join(work, 'logs');
  mkdirSync(logs);
  return { opts, config, work, logs, log };
}

/** A distribution registry as the upstream, holding ROLLOUT_REPO:1 of `size` bytes; its access log counts what it sends. */
export async function rolloutUpstream({ work, logs, size }) {
  const upstream = await startDistribution({ name: 'upstream', dir: logs, storage: join(work, 'upstream-storage') });
  const upstreamUrl = `http://${upstream.address}`;
  const image = await pushRolloutImage(upstreamUrl, ROLLOUT_REPO, '1', work, size);
  return { upstream, upstreamUrl, upLog: new UpstreamLog(upstream), image, imageBytes: image.bytes };
}
