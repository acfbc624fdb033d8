import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../fixtures/http.js';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with the same TypeScript loader tap gave this process. */
function cli(args: string[], options: { env?: NodeJS.ProcessEnv; untilStdout?: RegExp } = {}): { done: Promise<Run>; kill: (signal: NodeJS.Signals) => void; started: Promise<string> } {
  const child = spawn(process.execPath, [...process.execArgv, MAIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onStarted: (line: string) => void = () => {};
  const started = new Promise<string>((resolve) => (onStarted = resolve));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    const m = options.untilStdout?.exec(stdout);
    if (m) onStarted(m[0]);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { done, kill: (s) => child.kill(s), started };
}

t.test('--version and --help', async (t) => {
  const version = await cli(['--version']).done;
  t.equal(version.code, 0);
  t.match(version.stdout, /^\d+\.\d+\.\d+/);
  const help = await cli(['serve', '--help']).done;
  t.equal(help.code, 0);
  t.match(help.stdout, /--config <file>/);
  t.match(help.stdout, /--listen <host:port>/);
  t.match(help.stdout, /--storage <dir>/);
});

t.test('a config error is one line naming the key, exit 2', async (t) => {
  const dir = t.testdir({ 'bad.json': JSON.stringify({ upstreams: { 'docker.io': { url: 'https://x' } }, storage: { maxSize: 'lots' } }) });
  const run = await cli(['serve', '--config', path.join(dir, 'bad.json')]).done;
  t.equal(run.code, 2);
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.match(run.stderr, /^regmirror: config error: storage\.maxSize: /);
  const missing = await cli(['serve', '--config', path.join(dir, 'none.json')]).done;
  t.equal(missing.code, 2);
  t.match(missing.stderr, /cannot read config file/);
  const badFlag = await cli(['serve', '--listen', 'nowhere', '--config', path.join(dir, 'bad.json')]).done;
  t.equal(badFlag.code, 2);
  const unknownCommand = await cli(['servee']).done;
  t.equal(unknownCommand.code, 2);
});

t.test('serve starts offline on a config, answers /v2/, and stops cleanly on SIGTERM', async (t) => {
  const dir = t.testdir({});
  const config = path.join(dir, 'c.json');
  // An upstream nobody listens on: the mirror must still start.
  writeFileSync(config, JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, storage: { path: 'cache' } }));
  const proc = cli(['serve', '--config', config, '--listen', '127.0.0.1:0', '--log-level', 'info'], { untilStdout: /"address":"127\.0\.0\.1:(\d+)"/ });
  const line = await proc.started;
  const port = /:(\d+)"$/.exec(line)?.[1];
  const res = await request(`http://127.0.0.1:${port}/v2/`);
  t.equal(res.status, 200);
  proc.kill('SIGTERM');
  const run = await proc.done;
  t.equal(run.code, 0, 'exit 0 after SIGTERM');
  t.match(run.stdout, /shutting down/);
});
