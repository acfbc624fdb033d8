/** What travels over the admin socket (JSON), and what `--json` prints. */

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

export type AdminCommand =
  | { readonly command: 'ls' }
  | { readonly command: 'verify'; readonly fix: boolean }
  | { readonly command: 'gc' }
  | ({ readonly command: 'prune' } & PruneRequest);

/** Who holds a storage directory, as its socket answers `GET /v1/owner`. */
export interface Holder {
  readonly kind: 'serve' | 'cache';
  readonly pid: number;
  readonly command: string;
}

/** Parses a request body; undefined when it is not a command (answered 400). */
export function parseCommand(value: unknown): AdminCommand | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  switch (v['command']) {
    case 'ls':
    case 'gc':
      return { command: v['command'] };
    case 'verify':
      return { command: 'verify', fix: v['fix'] === true };
    case 'prune': {
      const olderThanMs = v['olderThanMs'];
      const repo = v['repo'];
      if (olderThanMs !== undefined && (typeof olderThanMs !== 'number' || !(olderThanMs >= 0))) return undefined;
      if (repo !== undefined && typeof repo !== 'string') return undefined;
      if (olderThanMs === undefined && repo === undefined) return undefined;
      return { command: 'prune', dryRun: v['dryRun'] === true, ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(repo !== undefined ? { repo } : {}) };
    }
    default:
      return undefined;
  }
}
