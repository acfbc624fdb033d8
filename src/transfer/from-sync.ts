import type { SyncEntry } from '../config/index.js';
import { parseRepositoryName, parseTag } from '../oci/index.js';
import { entryRepositories, onlyExact, selectTags } from '../sync/index.js';
import type { ExportItem } from './exporter.js';
import type { ExportSource } from './export-source.js';

/**
 * `--from-sync`: the images the sync entries select, with the same filters a sync run applies
 * (a pattern through the catalog, tag filters through the tag list, the entry's platforms).
 */
export async function syncExportItems(entries: readonly SyncEntry[], source: ExportSource): Promise<ExportItem[]> {
  const items: ExportItem[] = [];
  for (const entry of entries) {
    for (const repository of await entryRepositories(entry, () => source.catalog(entry.upstream))) {
      const name = parseRepositoryName(repository);
      const tags = onlyExact(entry.tags) ? entry.tags.exact : selectTags(entry.tags, await source.tags({ upstream: entry.upstream, name }));
      for (const tag of tags) {
        items.push({ ref: { upstream: entry.upstream, repository: name, tag: parseTag(tag), digest: undefined }, platforms: entry.platforms, referrers: entry.referrers });
      }
    }
  }
  return items;
}
