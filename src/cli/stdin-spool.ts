import { randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { storageLayout } from '../storage/index.js';
import { CliError } from './cli-error.js';

export interface Spool {
  readonly file: string;
  /** Removes the spool, and the directories made for it that stayed empty. */
  dispose(): Promise<void>;
}

const NAME = /^stdin-(\d+)-[0-9a-f]{12}\.tar$/;

/**
 * `regmirror import -`: the tar on stdin, written to a file first. An import checks everything (the
 * index at the tar's end, every manifest, every blob's hash) before it touches the cache, which a
 * stream read once cannot give. The file goes on the cache's filesystem, where the room for images
 * is (a pod's /tmp is small), and is removed however the import ends; one a killed import left is
 * removed by the next `import -`.
 */
export async function spoolStdin(storageRoot: string, stdin: NodeJS.ReadStream = process.stdin): Promise<Spool> {
  if (stdin.isTTY === true) throw new CliError('import: - reads a tar from stdin, which is a terminal: pipe or redirect one into it', 2);
  const dir = storageLayout(storageRoot).incomingDir;
  const made = await mkdir(dir, { recursive: true });
  await removeOrphans(dir);
  const file = path.join(dir, `stdin-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  // A signal ends the process without unwinding: the exit handler still removes the file.
  const onExit = () => rmSync(file, { force: true });
  const onSignal = (signal: NodeJS.Signals) => process.exit(signal === 'SIGINT' ? 130 : 143);
  process.on('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const dispose = async () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rm(file, { force: true });
    if (made === undefined) return;
    // Innermost first; rmdir refuses a directory something else was put in meanwhile.
    for (let d = dir; d.length >= made.length; d = path.dirname(d)) if (!(await rmdir(d).then(() => true, () => false))) break;
  };
  try {
    await pipeline(stdin, createWriteStream(file));
  } catch (err) {
    await dispose();
    throw new CliError(`import: reading stdin into ${file}: ${(err as Error).message}`, 1);
  }
  return { file, dispose };
}

/** Spools of imports that are no longer running. */
async function removeOrphans(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const pid = Number(NAME.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) await rm(path.join(dir, name), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
