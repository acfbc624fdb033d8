import t from 'tap';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { regmirror } from '../fixtures/regmirror-process.js';
import { tokenScenario, tokenWorld } from '../fixtures/token-cli.js';

// `regmirror token …` as child processes with the storage to themselves (token-serve.test.ts: beside a serve).

t.test('token commands with the storage to themselves', (t) => tokenScenario(t, 'alone'));


t.test('bad arguments: one line, exit 2, nothing written (the rest of the refusals: tests/admin/token-commands.test.ts)', async (t) => {
  const w = tokenWorld(t);
  mkdirSync(w.storage);
  const cases: Array<[string[], RegExp]> = [
    [['token', 'create'], /^regmirror: token create: give --name NAME$/],
    [['token', 'create', '--name', 'ci', '--read', 'quay.io/x'], /^regmirror: token create: --read: "quay\.io\/x" must start with a configured upstream/],
    [['token', 'revoke'], /^error: missing required argument 'name'$/],
  ];
  for (const [args, line] of cases) {
    const r = await regmirror([...args, ...w.base]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    t.match(r.stderr.trim(), line);
    t.equal(r.stdout, '');
  }
  t.notOk(existsSync(path.join(w.storage, 'auth')), 'no token file was written');
  rmSync(w.storage, { recursive: true });
  const nowhere = await regmirror(['token', 'create', '--name', 'ci', ...w.base]);
  t.equal(nowhere.code, 1);
  t.match(nowhere.stderr, /^regmirror: token create: storage .* does not exist\n$/);
  t.notOk(existsSync(w.storage), 'and is not created');
});
