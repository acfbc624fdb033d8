import type { Command } from 'commander';
import { CACHE_COMMAND_TABLE, CacheAdmin, FileBlobRemover, pinnedInSnapshot } from '../admin/index.js';
import { configuredPins } from '../app.js';
import { PinFile } from '../cache/index.js';
import { createMetadataStore, FsBlobStore } from '../storage/index.js';
import { registerAdminGroup } from './admin-group.js';

/** `regmirror cache <command>`, one per ADMIN_COMMANDS entry: sent to a running server on the same storage, or run here under its lock. */
export function registerCacheCommands(program: Command): void {
  registerAdminGroup(program, {
    name: 'cache',
    description: 'inspect and clean the cache (safe while serve runs)',
    table: CACHE_COMMAND_TABLE,
    socketPath: '/v1/command',
    async open(config) {
      const root = config.storage.path;
      const store = new FsBlobStore({ root });
      const metadata = createMetadataStore(config.storage);
      await metadata.open().catch(async (err: unknown) => {
        await metadata.close().catch(() => {});
        throw err;
      });
      // Alone on the storage: no download is in flight, so every temp file is an orphan.
      const pins = configuredPins(config).with(await new PinFile(root).load());
      const target = new CacheAdmin({
        root,
        store,
        metadata,
        remover: new FileBlobRemover(store, metadata),
        pinned: pinnedInSnapshot(root, (key) => pins.matchesKey(key)),
        tempGraceMs: undefined,
      });
      return { target, close: () => metadata.close() };
    },
  });
}
