import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from '../fixtures/daemons.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

t.test('npm start builds only when a source changed', async (t) => {
  t.equal((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['prestart'], 'node scripts/build-if-changed.mjs');
  // The script in a tree of its own, with a stand-in tsc that records each run.
  const dir = t.testdir({ src: { 'a.ts': 'x' }, 'tsconfig.json': '{}', 'tsconfig.build.json': '{}', 'package.json': '{}', dist: {}, scripts: {} });
  copyFileSync(path.join(ROOT, 'scripts/build-if-changed.mjs'), path.join(dir, 'scripts/build-if-changed.mjs'));
  mkdirSync(path.join(dir, 'node_modules/typescript/bin'), { recursive: true });
  const runs = path.join(dir, 'tsc-runs');
  const tsc = (exit: number) =>
    writeFileSync(path.join(dir, 'node_modules/typescript/bin/tsc'), `require('node:fs').appendFileSync(${JSON.stringify(runs)}, 'x'); process.exit(${exit});`);
  const tscRuns = () => (existsSync(runs) ? readFileSync(runs, 'utf8').length : 0);
  // A logical clock (seconds, an hour back): each touched input, and each stamp the script writes,
  // gets the next tick, so "newer" never depends on the file system's timestamp resolution.
  let clock = Math.floor(Date.now() / 1000) - 3600;
  const stamp = path.join(dir, 'dist/.build-stamp');
  for (const f of ['src', 'src/a.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) utimesSync(path.join(dir, f), clock, clock);
  const start = async () => {
    const r = await runCommand(process.execPath, [path.join(dir, 'scripts/build-if-changed.mjs')]);
    const written = existsSync(stamp) && statSync(stamp).mtimeMs / 1000 > clock + 60;
    if (written) utimesSync(stamp, ++clock, clock);
    return r;
  };
  const touch = (file: string) => {
    writeFileSync(path.join(dir, file), 'changed');
    utimesSync(path.join(dir, file), ++clock, clock);
  };

  tsc(0);
  t.equal((await start()).code, 0);
  t.equal(tscRuns(), 1, 'the first start builds');
  const again = await start();
  t.equal(again.code, 0);
  t.equal(tscRuns(), 1, 'nothing changed: no tsc');
  t.equal(again.stderr, 'regmirror: dist/ is up to date with src/, not rebuilding\n');
  touch('src/a.ts');
  await start();
  t.equal(tscRuns(), 2, 'a changed source builds');
  touch('tsconfig.build.json');
  await start();
  t.equal(tscRuns(), 3, 'a changed tsconfig builds');
  touch('src/b.ts');
  utimesSync(path.join(dir, 'src'), clock, clock);
  await start();
  t.equal(tscRuns(), 4, 'a new source builds');
  await start();
  t.equal(tscRuns(), 4);
  tsc(2);
  touch('src/a.ts');
  t.equal((await start()).code, 2, 'a failed build fails npm start');
  tsc(0);
  await start();
  t.equal(tscRuns(), 6, 'and is tried again next time, though dist/ may hold its output');
});
