import t from 'tap';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { regmirror } from '../fixtures/regmirror-process.js';
import { pinnedScenario, scenario, world } from '../fixtures/cache-cli.js';

// Every cache command as a real child process with the storage to itself; beside a running serve: cache-serve.test.ts.

t.test('cache commands with the storage to themselves', (t) => scenario(t, 'alone'));
t.test('gc keeps pinned content no tag reaches, alone', (t) => pinnedScenario(t, 'alone'));

t.test('bad arguments: one line, exit 2', async (t) => {
  const w = world(t);
  const config = w.config('http://127.0.0.1:9');
  const cases: Array<[string[], RegExp]> = [
    [['cache', 'prune', '--config', config], /^regmirror: cache prune: give --older-than DURATION and\/or --repo PATTERN$/],
    [['cache', 'prune', '--older-than', 'soon', '--config', config], /^regmirror: cache prune: --older-than: "soon" is not a duration/],
    [['cache', 'prune', '--repo', '', '--config', config], /^regmirror: cache prune: --repo: the repository pattern is empty$/],
    [['cache', 'prune', '--repo', 'lib**', '--config', config], /^regmirror: cache prune: --repo: "\*\*" must be a whole segment in "lib\*\*"/],
    [['cache', 'ls', '--bogus', '--config', config], /^error: unknown option '--bogus'$/],
    [['cache', 'verify', '--fix=yes', '--config', config], /^error: /],
    [['cache', 'gc', '--config', path.join(os.tmpdir(), 'no-such-regmirror.json')], /^regmirror: config error: cannot read config file/],
    [['cache', 'shrink', '--config', config], /^error: unknown command 'shrink'/],
  ];
  for (const [args, line] of cases) {
    const r = await regmirror(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    t.match(r.stderr.trim(), line);
  }
  t.notOk(existsSync(w.storage), 'a refused command touched nothing');
  const nowhere = await regmirror(['cache', 'ls', '--config', config]);
  t.equal(nowhere.code, 1, 'a storage that does not exist is an error, not an empty cache');
  t.match(nowhere.stderr, /^regmirror: cache ls: storage .* does not exist\n$/);
  t.notOk(existsSync(w.storage), 'and is not created');
});
