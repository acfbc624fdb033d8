// What every side-by-side bench script sets up first: a work directory removed at exit (unless
// kept), a log line with the seconds since start, every process it started stopped on any exit,
// and a deadline after which it stops itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAllSync } from './procs.mjs';

export function benchRun(name, { keep = false, deadlineMinutes = 10 } = {}) {
  const work = mkdtempSync(join(tmpdir(), `regmirror-${name}-bench-`));
  const t0 = Date.now();
  const log = (msg) => process.stderr.write(`[${name} bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);
  process.on('exit', () => {
    stopAllSync();
    if (!keep) rmSync(work, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  setTimeout(() => {
    log(`deadline of ${deadlineMinutes} minutes passed; stopping`);
    process.exit(3);
  }, deadlineMinutes * 60_000).unref();
  return { work, log };
}

/** Exits 0 when `done` resolves; logs the failure and exits 1 when it rejects (every child stopped by the exit hook). */
export function exitWhenDone(done, log) {
  done.then(
    () => process.exit(0),
    (err) => {
      log(`failed: ${err.stack ?? err}`);
      process.exit(1);
    },
  );
}
