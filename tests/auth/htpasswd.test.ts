import t, { type Test } from 'tap';
import bcrypt from 'bcryptjs';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HtpasswdError, HtpasswdUsers, parseHtpasswd, watchFile } from '../../src/auth/index.js';
import { createLogger } from '../../src/observability/index.js';
import { until } from '../fixtures/poll.js';

// The htpasswd users: the file format, and the file as a mounted Secret rotates under a running server.

/** Cost 4, bcrypt's least: the format is the same, the tests stay quick. */
const hash = (password: string, prefix = '$2y$') => prefix + bcrypt.hashSync(password, 4).slice(4);

function dir(t: Test): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'rm-htpasswd-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>>; text: () => string } {
  const raw: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void raw.push(line) });
  return {
    logger,
    get lines() {
      return raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}

function htpasswdTool(user: string, password: string): string | undefined {
  try {
    return execFileSync('htpasswd', ['-nbB', user, password], { encoding: 'utf8' }).trim();
  } catch {
    return undefined; // apache2-utils not installed
  }
}

t.test('the format: bcrypt lines load, other hash formats are refused by user and line, comments skipped', async (t) => {
  const alice = hash('a');
  const parsed = parseHtpasswd(
    [
      '# users of the mirror',
      `alice:${alice}`,
      '',
      'bob:$apr1$G0CYcekB$9FK2yN/tqqvI4470zhrqv/',
      'carol:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=',
      'dave:plaintext',
      'eve:vz6LS7660x9VU',
      `frank:${hash('f', '$2b$')}`,
      `gina:${hash('g', '$2a$')}\r`,
    ].join('\n'),
  );
  t.same([...parsed.users.keys()], ['alice', 'frank', 'gina']);
  t.equal(parsed.users.get('alice'), alice);
  t.same(parsed.refused, [
    { user: 'bob', line: 4 },
    { user: 'carol', line: 5 },
    { user: 'dave', line: 6 },
    { user: 'eve', line: 7 },
  ]);
});

t.test('a file that cannot be meant as it stands is refused whole, naming the line but never its content', async (t) => {
  const good = `alice:${hash('a')}`;
  const cases: Array<[string, RegExp]> = [
    [`${good}\nhalf-a-line-without-colon`, /^line 2 is not "user:hash"$/],
    [`${good}\n:${hash('x')}`, /^line 2 has an empty or invalid user name$/],
    [`${good}\nbob:`, /^line 2 has no hash$/],
    [`${good}\n${good}`, /^line 2 repeats the user of line 1$/],
    [`${good}\nbob:${hash('b').slice(0, 40)}`, /^line 2 has a damaged bcrypt hash$/],
    [`${good}\nbob:$2y$99$${'a'.repeat(53)}`, /^line 2 has a damaged bcrypt hash$/],
  ];
  for (const [text, message] of cases) {
    const err = t.throws(() => parseHtpasswd(text)) as Error;
    t.ok(err instanceof HtpasswdError, message.source);
    t.match(err.message, message);
    t.notMatch(err.message, /\$2/, 'no hash in the message');
  }
  t.same(parseHtpasswd('').users.size, 0, 'an empty file is no users');
});

t.test('check: the right password of a known user only; the htpasswd tool hashes work too', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'htpasswd');
  const tool = htpasswdTool('tom', 'from-the-tool');
  writeFileSync(file, [`alice:${hash('wonderland')}`, `bob:${hash('builder', '$2b$')}`, ...(tool ? [tool] : [])].join('\n'));
  const log = capture();
  const users = new HtpasswdUsers({ file, logger: log.logger, watch: { pollMs: 60_000 } });
  t.teardown(() => users.close());
  t.equal(await users.check('alice', 'wonderland'), false, 'nothing before start');
  await users.start();
  t.equal(users.size, tool ? 3 : 2);
  t.equal(await users.check('alice', 'wonderland'), true);
  t.equal(await users.check('bob', 'builder'), true);
  t.equal(await users.check('alice', 'builder'), false, "another user's password");
  t.equal(await users.check('alice', 'Wonderland'), false);
  t.equal(await users.check('nobody', 'wonderland'), false, 'an unknown user');
  t.equal(await users.check('', ''), false);
  if (tool) t.equal(await users.check('tom', 'from-the-tool'), true, 'htpasswd -nbB output');
  else t.comment('htpasswd (apache2-utils) not installed: its hashes untested');
  t.match(log.lines, [{ level: 'info', msg: 'htpasswd users loaded', users: tool ? 3 : 2 }]);
});

t.test('start fails on a file that is missing or broken; refused lines are one warning each, without the hash', async (t) => {
  const d = dir(t);
  const log = capture();
  const missing = new HtpasswdUsers({ file: path.join(d, 'none'), logger: log.logger });
  await t.rejects(missing.start(), { name: 'HtpasswdError', message: /htpasswd file .*none cannot be read \(ENOENT\)/ });
  const file = path.join(d, 'htpasswd');
  writeFileSync(file, 'alice');
  await t.rejects(new HtpasswdUsers({ file, logger: log.logger }).start(), { name: 'HtpasswdError', message: /htpasswd file .*: line 1 is not "user:hash"/ });

  const md5 = 'bob:$apr1$G0CYcekB$9FK2yN/tqqvI4470zhrqv/';
  const alice = hash('a');
  writeFileSync(file, `alice:${alice}\n${md5}\ncarol:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n`);
  const users = new HtpasswdUsers({ file, logger: log.logger, watch: { pollMs: 60_000 } });
  t.teardown(() => users.close());
  await users.start();
  const refused = log.lines.filter((l) => l['msg'] === undefined || String(l['msg']).startsWith('htpasswd line refused'));
  t.same(
    refused.map((l) => [l['level'], l['user'], l['line']]),
    [
      ['warn', 'bob', 2],
      ['warn', 'carol', 3],
    ],
  );
  for (const secret of ['G0CYcekB', 'GpHWL3ym', alice.slice(7)]) t.notOk(log.text().includes(secret), 'no hash of any kind in the log');
  t.equal(await users.check('bob', 'pw'), false, 'a refused user cannot log in');
});

t.test('reload: a removed user fails at once (fail closed); a broken or missing file keeps the last good set', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'htpasswd');
  writeFileSync(file, `alice:${hash('a-pass')}\nbob:${hash('b-pass')}\n`);
  const log = capture();
  let changes = 0;
  const users = new HtpasswdUsers({ file, logger: log.logger, watch: { pollMs: 60_000 }, onChange: () => changes++ });
  t.teardown(() => users.close());
  await users.start();
  t.equal(changes, 1);

  writeFileSync(file, `alice:${hash('a-pass')}\n`);
  await users.reload();
  t.equal(await users.check('bob', 'b-pass'), false, 'bob is gone');
  t.equal(await users.check('alice', 'a-pass'), true);
  t.equal(changes, 2, 'the change is announced (cached verifications go)');
  await users.reload();
  t.equal(changes, 2, 'the same content again is no change');

  writeFileSync(file, `alice:${hash('a-pass')}\nmallory-without-colon\n`);
  await users.reload();
  await users.reload();
  t.equal(await users.check('alice', 'a-pass'), true, 'a broken file keeps the last good set');
  const warnings = log.lines.filter((l) => l['msg'] === 'htpasswd file not reloaded: keeping the users loaded before');
  t.equal(warnings.length, 1, 'one warning per problem, not per poll');
  t.match(warnings[0], { level: 'warn', reason: 'line 2 is not "user:hash"', users: 1 });

  rmSync(file);
  await users.reload();
  t.equal(await users.check('alice', 'a-pass'), true, 'a missing file (mid-rotation) keeps them too');
  t.match(log.lines.at(-1), { level: 'warn', reason: 'it cannot be read (ENOENT)' });

  writeFileSync(file, `carol:${hash('c-pass')}\n`);
  await users.reload();
  t.equal(await users.check('carol', 'c-pass'), true, 'a good file again loads');
  t.equal(await users.check('alice', 'a-pass'), false);
  t.notMatch(log.text(), /a-pass|b-pass|c-pass/, 'no password in the log');
});

t.test('a Secret mounted by Kubernetes: the ..data symlink swap is noticed without calling reload', async (t) => {
  const d = dir(t);
  // <mount>/htpasswd -> ..data/htpasswd, ..data -> ..<timestamp>/ : the layout the kubelet writes.
  const version = (n: number, text: string) => {
    const v = path.join(d, `..2024_0${n}`);
    mkdirSync(v);
    writeFileSync(path.join(v, 'htpasswd'), text);
    symlinkSync(`..2024_0${n}`, path.join(d, '..data_tmp'));
    renameSync(path.join(d, '..data_tmp'), path.join(d, '..data'));
  };
  version(1, `alice:${hash('old')}\nbob:${hash('b')}\n`);
  symlinkSync('..data/htpasswd', path.join(d, 'htpasswd'));
  const users = new HtpasswdUsers({ file: path.join(d, 'htpasswd'), logger: capture().logger, watch: { pollMs: 60_000, debounceMs: 10 } });
  t.teardown(() => users.close());
  await users.start();
  t.equal(await users.check('bob', 'b'), true);
  version(2, `alice:${hash('new')}\n`);
  await until('the watcher reloads after the swap', () => users.check('bob', 'b'), (ok) => !ok);
  t.equal(await users.check('alice', 'new'), true, 'rotated password works');
  t.equal(await users.check('alice', 'old'), false, 'the old one does not');
});

t.test('where the directory cannot be watched, the periodic call alone notices; close stops both', async (t) => {
  const d = dir(t);
  let calls = 0;
  // No such directory: watching fails at once, polling is all there is.
  const watch = watchFile(path.join(d, 'missing', 'htpasswd'), () => calls++, { pollMs: 10 });
  await until('polled a few times', () => calls, (n) => n >= 3);
  watch.close();
  const after = calls;
  let events = 0;
  const watched = watchFile(path.join(d, 'htpasswd'), () => events++, { pollMs: 60_000, debounceMs: 5 });
  writeFileSync(path.join(d, 'htpasswd'), 'x');
  writeFileSync(path.join(d, 'htpasswd'), 'y');
  await until('a directory event', () => events, (n) => n >= 1);
  watched.close();
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(calls, after, 'no call after close');
});
