import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { CACHE_COMMAND_TABLE, CacheAdmin, FileBlobRemover, PIN_SOURCES, pinnedInSnapshot, UsageError } from '../admin/index.js';
import { configuredPins } from '../app.js';
import { PinFile } from '../cache/index.js';
import { PinSet } from '../mirror/index.js';
import { createMetadataStore, FsBlobStore, storageLayout } from '../storage/index.js';
import { registerAdminGroup } from './admin-group.js';

/** Commands that change what is cached: without the config's pins they could collect what storage.pin keeps. */
const NEED_PINS = new Set(['gc', 'prune']);

/** `regmirror cache <command>`, one per ADMIN_COMMANDS entry: sent to a running server on the same storage, or run here under its lock. */
export function registerCacheCommands(program: Command): void {
  registerAdminGroup(program, {
    name: 'cache',
    description: 'inspect and clean the cache (safe while serve runs)',
    table: CACHE_COMMAND_TABLE,
    socketPath: '/v1/command',
    async open(root, config, command) {
      if (config === undefined) checkStorageAlone(root, command);
      const store = new FsBlobStore({ root });
      const metadata = createMetadataStore({ path: root, metadata: config?.storage.metadata ?? { kind: 'embedded' } });
      await metadata.open().catch(async (err: unknown) => {
        await metadata.close().catch(() => {});
        throw err;
      });
      // Alone on the storage: no download is in flight, so every temp file is an orphan.
      const fromFile = await new PinFile(root).load();
      const pins = (config === undefined ? new PinSet([]) : configuredPins(config)).with(fromFile);
      const target = new CacheAdmin({
        root,
        store,
        metadata,
        remover: new FileBlobRemover(store, metadata),
        pinned: pinnedInSnapshot(root, (key) => pins.matchesKey(key)),
        isPinned: (upstream, repository) => pins.matches(upstream, repository),
        pinSources: config === undefined ? ['pins.json'] : PIN_SOURCES,
        tempGraceMs: undefined,
      });
      return { target, close: () => metadata.close() };
    },
  });
}

/**
 * `--storage DIR` with no config: reading works from the storage alone, but what gc and prune keep
 * is decided by pins in the config, and a storage whose records are in Redis has no log here.
 */
function checkStorageAlone(root: string, command: string): void {
  if (NEED_PINS.has(command)) throw new UsageError(`needs the config: storage.pin and the sync entries decide what stays (give --config FILE)`);
  if (!existsSync(storageLayout(root).metadataLog)) {
    throw new UsageError(`${root} has no metadata log (${storageLayout(root).metadataLog}); if its metadata is in Redis, give --config FILE`);
  }
}

