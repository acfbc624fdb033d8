/** What one image (a tag) came to in a run. */
export interface ImageResult {
  readonly repository: string;
  readonly tag: string;
  /** The tag's manifest (or index) digest; for a dry run, the cached one if any. */
  readonly digest: string | null;
  /**
   * A run: synced or failed. A dry run: `planned` (something to download, counted in
   * `wouldDownload`), `up-to-date`, `not-found` (no such repository or tag upstream), or `failed`.
   */
  readonly status: 'synced' | 'planned' | 'up-to-date' | 'not-found' | 'failed';
  /** Image manifests made available (one per selected platform). */
  readonly manifests: number;
  readonly blobs: number;
  /** Size of the selected blobs (cached or not). */
  readonly bytes: number;
  /** Bytes this run fetched from upstream. */
  readonly downloaded: number;
  readonly error?: string;
  /** A dry run: the blobs (and manifests) not held here, and their bytes. */
  readonly wouldDownload?: { readonly blobs: number; readonly bytes: number };
}

/** One entry's run: what the CLI prints, --json emits, and the status page summarises. */
export interface EntryResult {
  readonly job: string;
  readonly upstream: string;
  readonly repository: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly result: 'success' | 'failure';
  readonly images: readonly ImageResult[];
  readonly bytesDownloaded: number;
  readonly errors: readonly string[];
  /** Worth a look but not a failure: a tag filter that matched none of upstream's tags. */
  readonly warnings: readonly string[];
  /** Local tags dropped (or, in a dry run, that would be) because upstream no longer has them. */
  readonly pruned: readonly string[];
  /** Why the run stopped early to spare the upstream's rate limit, if it did. */
  readonly stoppedByRateLimit: string | null;
}

export interface SyncRunResult {
  readonly ok: boolean;
  readonly entries: readonly EntryResult[];
}

/** Live progress for the CLI's bars; every method is a cheap synchronous notification. */
export interface SyncProgress {
  imageStarted(job: string, image: string, blobs: number, bytes: number): void;
  blobDone(job: string, image: string, bytes: number): void;
  imageFinished(job: string, image: string, ok: boolean): void;
  /** A problem as it happens (an image failed, a retry, a filter that matched nothing), or a fact worth a line, for a readable line. */
  note?(job: string, level: NoteLevel, message: string): void;
}

export type NoteLevel = 'info' | 'warning' | 'error';
