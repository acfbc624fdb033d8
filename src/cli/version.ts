import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: dist/cli/ or src/cli/ sit two levels below it. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The release, as package.json names it: shown by --version and reported by a running server. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * What `--version` prints: the release alone does not say which build a bug report is about, and
 * the Node version decides TLS and HTTP behaviour.
 */
export function versionLine(root = ROOT): string {
  return `regmirror ${packageVersion()} (commit ${buildCommit(root) ?? 'unknown'}, node ${process.version})`;
}

/**
 * The commit this build came from: the image records it in a COMMIT file at build time (it has no
 * .git); a checkout reads .git directly, since git itself may not be installed where it runs.
 */
export function buildCommit(root = ROOT): string | undefined {
  const recorded = read(path.join(root, 'COMMIT'));
  if (recorded !== undefined && /^[0-9a-f]{7,40}$/.test(recorded)) return recorded.slice(0, 12);
  const head = gitHead(path.join(root, '.git'));
  return head?.slice(0, 12);
}

function gitHead(dotGit: string): string | undefined {
  // A worktree's .git is a file pointing at its git directory, which shares refs with the main one.
  const pointer = read(dotGit);
  const gitDir = pointer?.startsWith('gitdir: ') ? path.resolve(path.dirname(dotGit), pointer.slice('gitdir: '.length)) : dotGit;
  const head = read(path.join(gitDir, 'HEAD'));
  if (head === undefined) return undefined;
  if (!head.startsWith('ref: ')) return /^[0-9a-f]{40}$/.test(head) ? head : undefined;
  const ref = head.slice('ref: '.length);
  const common = read(path.join(gitDir, 'commondir'));
  const commonDir = common === undefined ? gitDir : path.resolve(gitDir, common);
  for (const dir of [gitDir, commonDir]) {
    const loose = read(path.join(dir, ref));
    if (loose !== undefined) return loose;
  }
  const packed = read(path.join(commonDir, 'packed-refs'))?.split('\n').find((l) => l.endsWith(` ${ref}`));
  return packed?.slice(0, 40);
}

function read(file: string): string | undefined {
  // A directory (.git in a plain checkout) reads as undefined, as a missing file does.
  try {
    return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  } catch {
    return undefined;
  }
}
