import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What the server is doing, as the idle collection looks at it. */
export interface Activity {
  /** Responses being sent and downloads running now. */
  readonly inFlight: number;
  /** Responses ever started: a change between two looks means requests came and went in between. */
  readonly started: number;
}

export interface IdleCollectionOptions {
  readonly checkEveryMs?: number;
  /**
   * How far RSS must have grown since the last collection for one to be worth it: a readiness probe
   * or a metrics scrape every few seconds is activity too, and must not cost a full collection each.
   */
  readonly minGrowthBytes?: number;
  readonly rss?: () => number;
  /** Gives the allocator's free pages back to the system (malloc-trim.ts), a moment after a collection. */
  readonly trim?: () => unknown;
}

/**
 * A full collection that also compacts every page. A plain one frees the objects but keeps each page
 * that still holds a few live ones: after the 200-client load, 34.5 MiB of old space stayed committed
 * around 18 MiB in use (+15% idle RSS in one run of four). Compacting costs more than a plain
 * collection, so the flag is on for this one idle collection only.
 */
function compacting(gc: () => void): void {
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

/** V8 may still be freeing the collected buffers' memory on its sweeper thread when gc() returns. */
const TRIM_AFTER_MS = 1_000;
/**
 * Trims on the quiet checks after that one (about 10 s at the default interval): memory freed after the
 * collection, as the last connections of a load close, stayed resident otherwise (after the
 * 200-client load: 91 MiB idle where a trim 10 s later gave 77).
 */
const LATER_TRIMS = 4;

/**
 * A full garbage collection once the server goes idle after moving bytes. V8 collects only while
 * JavaScript allocates, so after a burst (64 cold pulls, 100 stalled readers) an idle mirror kept the
 * burst's freed read buffers, external memory the heap no longer reaches, until its next request:
 * RSS stayed 40-80 MiB above its idle level (BENCHMARKS.md, memory per client). One collection when
 * the last transfer ends gives it back, with what `release` lets go of (the free read buffers), and
 * `trim` then hands the allocator's free pages to the system; a busy server is never interrupted by it.
 *
 * Idle means a whole check interval with nothing in flight and nothing started. A look at what is in
 * flight alone found gaps between short requests under load, collected there, and then slept through
 * the load's end: 200 clients left 11 MiB of V8 pages and 8 MiB of buffers behind (+18% idle RSS).
 */
export function collectWhenIdle(activity: () => Activity, release: () => void = () => {}, options: IdleCollectionOptions = {}): () => void {
  const { checkEveryMs = 2_500, minGrowthBytes = 8 * 1024 * 1024, rss = process.memoryUsage.rss, trim } = options;
  setFlagsFromString('--expose-gc');
  // The flag exposes gc to contexts created from now on; a fresh one hands it over.
  const gc = runInNewContext('gc') as (() => void) | undefined;
  if (typeof gc !== 'function') return () => {};
  let busySinceLastCollection = false;
  let lastStarted = activity().started;
  let rssAfterCollection = rss();
  let trimming: NodeJS.Timeout | undefined;
  let trimsLeft = 0;
  const trimNow = (): void => {
    trim?.();
    rssAfterCollection = rss();
  };
  const timer = setInterval(() => {
    const { inFlight, started } = activity();
    const quiet = inFlight === 0 && started === lastStarted;
    lastStarted = started;
    if (!quiet) {
      busySinceLastCollection = true;
      // A busy server is not trimmed: the next collection will be followed by trims again.
      clearTimeout(trimming);
      trimsLeft = 0;
    } else if (busySinceLastCollection) {
      busySinceLastCollection = false;
      if (rss() - rssAfterCollection < minGrowthBytes) return;
      release();
      compacting(gc);
      rssAfterCollection = rss();
      if (trim !== undefined) {
        clearTimeout(trimming);
        trimming = setTimeout(() => {
          trimNow();
          trimsLeft = LATER_TRIMS;
        }, TRIM_AFTER_MS).unref();
      }
    } else if (trimsLeft > 0) {
      trimsLeft -= 1;
      trimNow();
    }
  }, checkEveryMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(trimming);
  };
}
