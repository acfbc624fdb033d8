import t from 'tap';
import path from 'node:path';
import { ConfigErrors, loadConfigFile, parseConfig } from '../../src/config/index.js';
import { configCheck, type Output } from '../../src/cli/config-check.js';
import { regmirror as cli } from '../fixtures/regmirror-process.js';

// The operator's step: `regmirror config check -c mirror.config.json` before (re)starting the service.

const THREE_MISTAKES = {
  upstreams: {
    'docker.io': { url: 'registry-1.docker.io' },
    'ghcr.io': { url: 'https://ghcr.io/v2/', connections: 0 },
  },
  defaultUpstream: 'docker.io',
  storage: { maxSize: 'lots' },
};

function captured(): Output & { lines: { out: string[]; err: string[] } } {
  const lines = { out: [] as string[], err: [] as string[] };
  return { lines, out: (l) => void lines.out.push(l), err: (l) => void lines.err.push(l) };
}

t.test('config check lists every error in one pass, exit 2', async (t) => {
  const dir = t.testdir({ 'mirror.config.json': JSON.stringify(THREE_MISTAKES) });
  const file = path.join(dir, 'mirror.config.json');
  const run = await cli(['config', 'check', '-c', file]);
  t.equal(run.code, 2);
  t.same(run.stderr.trim().split('\n'), [
    'config error: storage.maxSize: must be a positive size such as "20GiB" or "500MB"',
    'config error: upstreams.docker.io.url: "registry-1.docker.io" has no scheme; write "https://registry-1.docker.io"',
    'config error: upstreams.ghcr.io.url: must not end in /v2 (the mirror adds it); write "https://ghcr.io"',
    'config error: upstreams.ghcr.io.connections: must be an integer from 1 to 1024',
    `regmirror: ${file}: 4 errors`,
  ]);
  t.equal(run.stdout, '');
  const serve = await cli(['serve', '-c', file]);
  t.equal(serve.code, 2);
  t.equal(serve.stderr.trim(), `regmirror: config error: storage.maxSize: must be a positive size such as "20GiB" or "500MB" (and 3 more: regmirror config check -c ${file} lists them all)`);
});

t.test('config check on a valid file: one ok line, exit 0', async (t) => {
  const dir = t.testdir({ 'c.json': JSON.stringify({ upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' }, 'air.local': {} }, defaultUpstream: 'docker.io', storage: { path: 'cache', maxSize: '10GiB' } }) });
  const file = path.join(dir, 'c.json');
  const run = await cli(['config', 'check', '-c', file]);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, `ok: ${file} is valid: upstreams docker.io, air.local (offline); storage ${path.join(dir, 'cache')} (maxSize 10.0 GiB)\n`);
});

t.test('a JSON syntax error says the line and column', async (t) => {
  const dir = t.testdir({ 'c.json': '{\n  "upstreams": {\n    "docker.io": { "url": "https://x" }\n    "ghcr.io": {}\n  }\n}\n', 'd.json': '{\n  "listen": tru\n}' });
  const run = await cli(['config', 'check', '-c', path.join(dir, 'c.json')]);
  t.equal(run.code, 2);
  t.equal(run.stderr.split('\n')[0], `config error: config file ${path.join(dir, 'c.json')} is not valid JSON: line 4, column 5: Expected ',' or '}' after property value`);
  // In-process too: the child is not counted by coverage.
  const output = captured();
  await t.rejects(configCheck({ config: path.join(dir, 'd.json') }, output), { exitCode: 2, message: `${path.join(dir, 'd.json')}: 1 error` });
  t.match(output.lines.err[0], /is not valid JSON: line 2, column 13: Unexpected token/);
  await t.rejects(loadConfigFile(path.join(dir, 'none.json')), { message: /cannot read config file/ });
});

t.test('in process: every mistake collected, none invented by another', async (t) => {
  const output = captured();
  const dir = t.testdir({ 'c.json': JSON.stringify(THREE_MISTAKES), 'ok.json': JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9/mirror/v2' } } }) });
  await t.rejects(configCheck({ config: path.join(dir, 'c.json') }, output), { name: 'CliError', exitCode: 2 });
  t.equal(output.lines.err.length, 4);
  await t.rejects(configCheck({ config: path.join(dir, 'ok.json') }, output), { name: 'CliError', exitCode: 2 });
  t.equal(output.lines.err.at(-1), 'config error: upstreams.docker.io.url: must not end in /v2 (the mirror adds it); write "http://127.0.0.1:9/mirror"');
  // A broken upstream does not also make defaultUpstream, pins and sync entries that name it errors.
  try {
    parseConfig({ upstreams: { 'docker.io': 'x' }, defaultUpstream: 'docker.io', storage: { pin: ['docker.io/a'] }, manifestTTL: 'soon' }, { baseDir: dir, env: {} });
    t.fail('expected errors');
  } catch (err) {
    t.type(err, ConfigErrors);
    t.same((err as ConfigErrors).errors.map((e) => e.key), ['upstreams.docker.io', 'manifestTTL']);
  }
  const valid = captured();
  const good = t.testdir({ 'c.json': JSON.stringify({ upstreams: { 'docker.io': { url: 'http://127.0.0.1:9/' } }, storage: { path: 'cache', maxSize: 1000 } }) });
  await configCheck({ config: path.join(good, 'c.json') }, valid);
  t.same(valid.lines, { out: [`ok: ${path.join(good, 'c.json')} is valid: upstreams docker.io; storage ${path.join(good, 'cache')} (maxSize 1000 B)`], err: [] });
});
