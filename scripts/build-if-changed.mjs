#!/usr/bin/env node
// `npm start` and `npm install` build through here: tsc is most of `npm start`'s start-up time, and
// after the first build nothing needs compiling unless a source, a tsconfig or the set of source
// files changed. The stamp is written only after tsc succeeded, so a failed build is retried.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const stamp = path.join(root, 'dist', '.build-stamp');

/** The newest modification among the build's inputs; a directory's own time changes when a file is added or removed. */
function newestInput() {
  let newest = 0;
  const visit = (p) => {
    const s = statSync(p);
    newest = Math.max(newest, s.mtimeMs);
    if (s.isDirectory()) for (const name of readdirSync(p)) visit(path.join(p, name));
  };
  for (const p of ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) visit(path.join(root, p));
  return newest;
}

const built = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? -1;
if (built >= newestInput()) {
  process.stderr.write('regmirror: dist/ is up to date with src/, not rebuilding\n');
} else {
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
