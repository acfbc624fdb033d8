import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { buildCommit, packageVersion, versionLine } from '../../src/cli/version.js';
import { completionScript } from '../../src/cli/completion.js';
import { runCommand } from '../fixtures/daemons.js';
import { haveTool } from '../fixtures/tools.js';
import { regmirror as cli } from '../fixtures/regmirror-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HEX = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

t.test('regmirror --version names the release, the commit and the Node version', async (t) => {
  const run = await cli(['--version']);
  t.equal(run.code, 0);
  // The child runs a transpiled copy outside the checkout: no .git there, so the commit is unknown.
  t.equal(run.stdout, `regmirror ${packageVersion()} (commit unknown, node ${process.version})\n`);
  if (haveTool('git')) {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    t.equal(versionLine(ROOT), `regmirror ${packageVersion()} (commit ${head.slice(0, 12)}, node ${process.version})`, 'in the checkout: its HEAD');
  }
});

t.test('the commit comes from the image COMMIT file, else from .git in any of its shapes', async (t) => {
  const dir = t.testdir({
    image: { COMMIT: `${HEX}\n` },
    garbage: { COMMIT: 'not a commit\n' },
    detached: { '.git': { HEAD: `${HEX}\n` } },
    loose: { '.git': { HEAD: 'ref: refs/heads/main\n', refs: { heads: { main: `${HEX}\n` } } } },
    packed: { '.git': { HEAD: 'ref: refs/heads/main\n', 'packed-refs': `# pack-refs with: peeled\n${HEX} refs/heads/main\n` } },
    none: {},
  });
  // A worktree: .git is a file naming its git directory, which keeps HEAD; refs live in the common one.
  const common = path.join(dir, 'main-repo.git');
  mkdirSync(path.join(common, 'worktrees', 'wt'), { recursive: true });
  writeFileSync(path.join(common, 'packed-refs'), `${HEX} refs/heads/wt\n`);
  writeFileSync(path.join(common, 'worktrees', 'wt', 'HEAD'), 'ref: refs/heads/wt\n');
  writeFileSync(path.join(common, 'worktrees', 'wt', 'commondir'), '../..\n');
  mkdirSync(path.join(dir, 'worktree'));
  writeFileSync(path.join(dir, 'worktree', '.git'), `gitdir: ${path.join(common, 'worktrees', 'wt')}\n`);

  const short = HEX.slice(0, 12);
  for (const shape of ['image', 'detached', 'loose', 'packed', 'worktree']) t.equal(buildCommit(path.join(dir, shape)), short, shape);
  t.equal(buildCommit(path.join(dir, 'garbage')), undefined, 'a COMMIT file that is no commit is ignored');
  t.equal(buildCommit(path.join(dir, 'none')), undefined);
  t.match(versionLine(path.join(dir, 'none')), /\(commit unknown, node v\d+/);
});

t.test('the bin entry npm link puts on PATH is the CLI, runnable as a script', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  t.same(pkg.bin, { regmirror: 'dist/cli/main.js' });
  t.match(readFileSync(path.join(ROOT, 'src/cli/main.ts'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'a shebang survives into dist');
});

/** What bash offers after `words` (the last one being completed), with the script sourced. */
async function complete(script: string, words: readonly string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const program = `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _regmirror; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await runCommand('bash', ['-c', program], {});
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split('\n').filter((w) => w !== '');
}

t.test('source <(regmirror completion bash) completes commands, subcommands and options', { skip: haveTool('bash') ? false : 'not installed: bash' }, async (t) => {
  const run = await cli(['completion', 'bash']);
  t.equal(run.code, 0);
  const script = run.stdout;
  t.same(await complete(script, ['regmirror', 'ca']), ['cache']);
  t.same(await complete(script, ['regmirror', 'cache', '']), ['ls', 'verify', 'gc', 'prune', '--help']);
  t.same(await complete(script, ['regmirror', 'cache', 'prune', '--o']), ['--older-than']);
  t.same(await complete(script, ['regmirror', 'serve', '--config', '']), [], 'a file name: left to the shell');
  t.same(await complete(script, ['regmirror', '--config', 'x.json', 'sync', '--d']), ['--dry-run'], 'option values are not commands');
  t.same(await complete(script, ['regmirror', 'completion', '']), ['bash', 'zsh', '--help']);
  t.match(await complete(script, ['regmirror', '--v']), ['--version']);

  const zsh = await cli(['completion', 'zsh']);
  t.equal(zsh.code, 0);
  t.match(zsh.stdout, /bashcompinit/);
  t.ok(zsh.stdout.endsWith(script), 'zsh loads the same function');
  const fish = await cli(['completion', 'fish']);
  t.equal(fish.code, 2);
  t.match(fish.stderr, /'fish' is invalid.*bash, zsh/);
});

t.test('the script follows the command tree: new commands and options complete without listing them', { skip: haveTool('bash') ? false : 'not installed: bash' }, async (t) => {
  const program = new Command('regmirror').version('1');
  program.command('doctor').option('-c, --config <file>').option('--quiet');
  program.command('hidden', { hidden: true });
  const script = completionScript(program, 'bash');
  t.same(await complete(script, ['regmirror', '']), ['doctor', '--version', '--help']);
  t.same(await complete(script, ['regmirror', 'doctor', '-c', '']), []);
  t.same(await complete(script, ['regmirror', 'doctor', '--']), ['--config', '--quiet', '--help']);
  t.match(completionScript(program, 'zsh'), /^\(\( \$\+functions\[compdef\] \)\)/);
});
