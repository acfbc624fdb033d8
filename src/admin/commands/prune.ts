import { parseDuration } from '../../config/index.js';
import type { PruneRequest, PruneResult } from '../protocol.js';
import { UsageError, type AdminCommandSpec } from './command.js';
import { checkRepoPattern, shortDigest } from './format.js';
import { gc } from './gc.js';

type Prune = { readonly command: 'prune' } & PruneRequest;

export const prune: AdminCommandSpec<Prune, PruneResult> = {
  name: 'prune',
  description: 'drop tags by age of last pull or by repository, then collect what they alone held',
  options: [
    { flags: '--older-than <duration>', description: 'tags not pulled for this long, e.g. 30d' },
    { flags: '--repo <pattern>', description: 'repositories matching a glob, e.g. "library/*" or "docker.io/**"' },
    { flags: '--dry-run', description: 'report what would go, change nothing' },
  ],
  fromCli(o) {
    const olderThan = o['olderThan'] as string | undefined;
    const repo = o['repo'] as string | undefined;
    if (olderThan === undefined && repo === undefined) throw new UsageError('give --older-than DURATION and/or --repo PATTERN');
    const olderThanMs = olderThan === undefined ? undefined : parseDuration(olderThan);
    if (olderThanMs === undefined && olderThan !== undefined) throw new UsageError(`--older-than: "${olderThan}" is not a duration such as "30d" or "12h"`);
    if (repo !== undefined) checkRepoPattern('--repo', repo);
    return request(o['dryRun'] === true, olderThanMs, repo);
  },
  parse(v) {
    const olderThanMs = v['olderThanMs'];
    const repo = v['repo'];
    if (olderThanMs !== undefined && (typeof olderThanMs !== 'number' || !(olderThanMs >= 0))) return undefined;
    if (repo !== undefined && typeof repo !== 'string') return undefined;
    if (olderThanMs === undefined && repo === undefined) return undefined;
    return request(v['dryRun'] === true, olderThanMs, repo);
  },
  run: (admin, r) => admin.prune(r),
  format(result) {
    const verb = result.gc.dryRun ? 'would prune' : 'pruned';
    const lines = result.tags.map((t) => `${verb} ${t.upstream}/${t.repository}:${t.tag} (${shortDigest(t.digest)})${comesBack(t)}`);
    lines.push(`${verb} ${result.tags.length} tags`);
    lines.push(gc.format(result.gc));
    return lines.join('\n');
  },
};

function request(dryRun: boolean, olderThanMs: number | undefined, repo: string | undefined): Prune {
  return { command: 'prune', dryRun, ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(repo !== undefined ? { repo } : {}) };
}

/** A pruned tag a pin or a sync entry keeps is not gone for good: say so, or the operator is surprised later. */
function comesBack(t: PruneResult['tags'][number]): string {
  const notes: string[] = [];
  if (t.pinned) notes.push('pinned: its content stays while the pin does');
  if (t.lastSynced !== null) notes.push(`synced ${t.lastSynced}: the next sync run brings it back`);
  return notes.length === 0 ? '' : `; ${notes.join('; ')}`;
}
