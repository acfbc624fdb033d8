import { formatBytes } from '../../config/index.js';
import type { LsRequest, LsResult, LsTag } from '../protocol.js';
import type { AdminCommandSpec } from './command.js';
import { checkRepoPattern, shortDigest, table } from './format.js';

type Ls = { readonly command: 'ls' } & LsRequest;

export const ls: AdminCommandSpec<Ls, LsResult> = {
  name: 'ls',
  description: 'list cached tags: digest, size, how complete, pinned, last sync, last client pull',
  options: [{ flags: '--incomplete', description: 'only images some of whose layers are not cached' }],
  argument: { syntax: '[pattern]', key: 'pattern' },
  fromCli(o) {
    const pattern = o['pattern'] as string | undefined;
    if (pattern !== undefined) checkRepoPattern('PATTERN', pattern);
    return request(pattern, o['incomplete'] === true);
  },
  parse(v) {
    const pattern = v['pattern'];
    if (pattern !== undefined && typeof pattern !== 'string') return undefined;
    return request(pattern, v['incomplete'] === true);
  },
  run: (admin, r) => admin.ls(r),
  format(result) {
    const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'COMPLETE', 'PINNED', 'SYNCED', 'LAST PULLED']];
    for (const t of result.tags) {
      rows.push([`${t.upstream}/${t.repository}`, t.tag, shortDigest(t.digest), formatBytes(t.cachedBytes), completeness(t), t.pinned ? 'yes' : 'no', t.lastSynced ?? 'no', t.lastPulled ?? 'never']);
    }
    const disk = `${result.blobs} blob files, ${formatBytes(result.bytes)} on disk`;
    if (result.tags.length === 0) return `no cached tags; ${disk}`;
    return `${table(rows)}\n${result.tags.length} tag${result.tags.length === 1 ? '' : 's'}; ${disk}`;
  },
  note(result) {
    if (result.pinSources.includes('storage.pin')) return undefined;
    return `PINNED shows ${result.pinSources.join(' and ')} only: storage.pin and the sync entries are in the config (give --config FILE)`;
  },
};

/** "2/3 layers": of the layers of every image manifest on disk, how many are here too. */
export function completeness(t: LsTag): string {
  if (!t.complete && t.layers.total === 0 && t.missingConfigs === 0) return 'no image';
  const parts = [`${t.layers.cached}/${t.layers.total} layers`];
  if (t.missingConfigs > 0) parts.push('no config');
  if (t.platforms.length > 0) parts.push(`${t.platforms.length} platform${t.platforms.length === 1 ? '' : 's'}`);
  return parts.join(', ');
}

function request(pattern: string | undefined, incomplete: boolean): Ls {
  return { command: 'ls', incomplete, ...(pattern === undefined ? {} : { pattern }) };
}

