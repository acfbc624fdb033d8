/** What the admin commands answer over the socket (JSON), and what `--json` prints; requests are in commands/. */

export interface LsResult {
  readonly tags: ReadonlyArray<{
    readonly upstream: string;
    readonly repository: string;
    readonly tag: string;
    readonly digest: string;
    readonly mediaType: string;
    /** The manifest, its children, configs and layers that are on this disk. */
    readonly cachedBlobs: number;
    readonly cachedBytes: number;
    /** ms since epoch (to the minute). */
    readonly lastPulled: number;
  }>;
  /** Every blob file on disk (manifests included), referenced or not. */
  readonly blobs: number;
  readonly bytes: number;
}

export interface VerifyResult {
  readonly checked: number;
  readonly bytes: number;
  readonly corrupt: ReadonlyArray<{ readonly digest: string; readonly size: number; readonly removed: boolean }>;
}

export interface GcResult {
  readonly dryRun: boolean;
  readonly blobs: ReadonlyArray<{ readonly digest: string; readonly size: number }>;
  readonly bytes: number;
  readonly metadataRecords: number;
  readonly tempFiles: number;
  readonly tempBytes: number;
}

export interface PruneRequest {
  readonly olderThanMs?: number;
  readonly repo?: string;
  readonly dryRun: boolean;
}

export interface PruneResult {
  readonly tags: ReadonlyArray<{ readonly upstream: string; readonly repository: string; readonly tag: string; readonly digest: string }>;
  readonly gc: GcResult;
}

/** Who holds a storage directory, as its socket answers `GET /v1/owner`. */
export interface Holder {
  readonly kind: 'serve' | 'cache' | 'token';
  readonly pid: number;
  readonly command: string;
}
