import { formatBytes } from '../../config/index.js';
import type { LsResult } from '../protocol.js';
import type { AdminCommandSpec } from './command.js';
import { shortDigest, table, when } from './format.js';

export const ls: AdminCommandSpec<{ readonly command: 'ls' }, LsResult> = {
  name: 'ls',
  description: 'list cached repositories, tags, digests, sizes and last pulls',
  options: [],
  fromCli: () => ({ command: 'ls' }),
  parse: () => ({ command: 'ls' }),
  run: (admin) => admin.ls(),
  format(result) {
    const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'LAST PULLED']];
    for (const t of result.tags) rows.push([`${t.upstream}/${t.repository}`, t.tag, shortDigest(t.digest), formatBytes(t.cachedBytes), when(t.lastPulled)]);
    const summary = `${result.tags.length} tag${result.tags.length === 1 ? '' : 's'}; ${result.blobs} blob files, ${formatBytes(result.bytes)} on disk`;
    return result.tags.length === 0 ? `no cached tags; ${summary.split('; ')[1]}` : `${table(rows)}\n${summary}`;
  },
};
