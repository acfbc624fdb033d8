import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection once the server goes idle after moving bytes. V8 collects only while
 * JavaScript allocates, so after a burst (64 cold pulls, 100 stalled readers) an idle mirror kept the
 * burst's freed read buffers, external memory the heap no longer reaches, until its next request:
 * RSS stayed 40-80 MiB above its idle level (BENCHMARKS.md, memory per client). One collection when
 * the last transfer ends gives it back, with what `release` lets go of (the free read buffers); a
 * busy server is never interrupted by it.
 */
export function collectWhenIdle(idle: () => boolean, release: () => void = () => {}, checkEveryMs = 5_000): () => void {
  setFlagsFromString('--expose-gc');
  // The flag exposes gc to contexts created from now on; a fresh one hands it over.
  const gc = runInNewContext('gc') as (() => void) | undefined;
  if (typeof gc !== 'function') return () => {};
  let busySinceLastCollection = false;
  const timer = setInterval(() => {
    if (!idle()) busySinceLastCollection = true;
    else if (busySinceLastCollection) {
      busySinceLastCollection = false;
      release();
      gc();
    }
  }, checkEveryMs);
  timer.unref();
  return () => clearInterval(timer);
}
