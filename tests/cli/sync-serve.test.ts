import t from 'tap';
import { writeSyncConfig } from '../fixtures/sync.js';
import { quickImage } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { runCommand } from '../fixtures/daemons.js';
import { regmirror as cli, regmirrorShellLine, startServe } from '../fixtures/regmirror-process.js';

t.test('regmirror sync beside a running serve runs inside it; sync --list shows who ran what', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '1', quickImage('cli-held'));
  const dir = t.testdir({});
  const config = writeSyncConfig(dir, reg.url, [
    { name: 'app', upstream: 'registry.test', repository: 'team/app', tags: ['1'], schedule: '6h' },
    { name: 'manual', upstream: 'registry.test', repository: 'team/app', tags: ['1'] },
  ]);
  const serve = await startServe(t, config);
  const res = await cli(['sync', '--config', config, '--only', 'app']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, /^regmirror: sync runs inside a running regmirror serve \(pid \d+\); Ctrl-C detaches, the run goes on there\n/);
  t.match(res.stdout, /app\s+team\/app:1\s+synced\s+1\s+3\s/);
  t.match(res.stdout, /1 entries, 1 images synced, .* fetched, 0 failed\n$/);
  t.ok(serve.daemon.lines.some((l) => l.includes('"msg":"sync run finished"') && l.includes('"job":"app"')), 'the server ran it');

  const list = await cli(['sync', '--config', config, '--list']);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^ENTRY\s+SCHEDULE\s+NEXT RUN\s+STATE\s+LAST RUN\s+BY\s+RESULT\n/);
  t.match(list.stdout, /\napp\s+6h\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+idle\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+cli\s+success\n/);
  t.match(list.stdout, /\nmanual\s+-\s+-\s+idle\s+-\s+-\s+-\n/, 'an entry that never ran is listed too');
  const json = await cli(['sync', '--config', config, '--list', '--json']);
  t.match(JSON.parse(json.stdout), { server: true, entries: [{ job: 'app', schedule: '6h', lastOrigin: 'cli', nextRunAt: /Z$/ }, { job: 'manual', lastOrigin: null }] });
  t.equal(reg.count({ kind: 'blob', method: 'GET' }), 3, 'fetched once, by the server');
});

t.test('regmirror sync on a terminal: colours by default', async (t) => {
  const reg = await startTestRegistry(t);
  reg.pushImage('team/app', '2', quickImage('tty-2'));
  const dir = t.testdir({});
  const coloured = writeSyncConfig(dir, reg.url, [{ upstream: 'registry.test', repository: 'team/app', tags: ['2'] }]);
  const env = { ...process.env };
  delete env['NO_COLOR'];
  // util-linux `script` gives the child a pseudo-terminal.
  const c = await runCommand('script', ['-qec', regmirrorShellLine(['sync', '--config', coloured]), '/dev/null'], { timeoutMs: 60_000, env });
  t.equal(c.code, 0, c.stdout);
  t.match(c.stdout, /\] \x1b\[32mok\x1b\[0m registry\.test\/team\/app: team\/app:2/);
  t.match(c.stdout, /\x1b\[32msynced\s*\x1b\[0m/, 'the status column is green');
});
