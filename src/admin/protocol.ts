/** What the admin commands answer over the socket (JSON), and what `--json` prints; requests are in commands/. */

export interface LsRequest {
  /** A repository glob matched against `repository` and `upstream/repository` (as `prune --repo`). */
  readonly pattern?: string;
  /** Only images some of whose blobs are not on this disk. */
  readonly incomplete: boolean;
}

export interface LsTag {
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly mediaType: string;
  /** The manifest, its children, configs and layers that are on this disk. */
  readonly cachedBlobs: number;
  readonly cachedBytes: number;
  /** Layers of every image manifest on this disk (for an index, the platforms cached): how many are here too. */
  readonly layers: { readonly cached: number; readonly total: number };
  /** Image configs missing beside their cached manifests (a client needs them before any layer). */
  readonly missingConfigs: number;
  /** For an index: the platforms (`os/arch[/variant]`) whose manifests are cached. Empty for a single image. */
  readonly platforms: readonly string[];
  /** At least one image manifest is here with its config and every layer: a client can pull it offline. */
  readonly complete: boolean;
  /** Its repository is pinned (storage.pin, sync entries, pins.json): eviction and gc leave its content. */
  readonly pinned: boolean;
  /** ISO 8601 of the last pull of this tag by a client; null: none recorded. */
  readonly lastPulled: string | null;
  /** ISO 8601 of the last sync run that resolved this tag; null: never synced. */
  readonly lastSynced: string | null;
}

export interface LsResult {
  readonly tags: readonly LsTag[];
  /** Every blob file on disk (manifests included), referenced or not. */
  readonly blobs: number;
  readonly bytes: number;
  /** Where the PINNED column's patterns came from (without a config: pins.json only). */
  readonly pinSources: readonly string[];
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
  readonly tags: ReadonlyArray<{
    readonly upstream: string;
    readonly repository: string;
    readonly tag: string;
    readonly digest: string;
    /** Its repository is pinned: the tag goes, its content stays while the pin does. */
    readonly pinned: boolean;
    /** ISO 8601 of the last sync run that resolved it (the next run brings it back); null: never synced. */
    readonly lastSynced: string | null;
  }>;
  readonly gc: GcResult;
}

/** Who holds a storage directory, as its socket answers `GET /v1/owner`. */
export interface Holder {
  readonly kind: 'serve' | 'cache' | 'token';
  readonly pid: number;
  readonly command: string;
}
