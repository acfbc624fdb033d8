// npm run build && node bench/tokens.mjs [--seconds N] [--connections N]
// Token issuance rate of /v2/token: anonymous GET and GET with HTTP Basic, one scope each, measured
// with wrk against an App built from dist/ in this process. The Basic case uses a stand-in password
// check (a constant-time compare), so it measures the endpoint and the signing, not the user
// source: with htpasswd, bcrypt's cost (tens of ms per check at cost 10) is what bounds a login.
import { timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { App } from '../dist/app.js';
import { InvalidCredentials } from '../dist/auth/index.js';
import { parseConfig } from '../dist/config/index.js';
import { toolVersion, wrk } from './lib/clients.mjs';

const { values: opts } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '16' } },
});
const seconds = Math.max(1, Math.min(60, Number(opts.seconds)));
const connections = Math.max(1, Math.min(256, Number(opts.connections)));

const PASSWORD = Buffer.from('bench-password');
const user = { subject: 'bench', kind: 'user', method: 'basic', groups: [] };
const passwords = {
  async verify(username, password) {
    const given = Buffer.from(password);
    if (username === 'bench' && given.length === PASSWORD.length && timingSafeEqual(given, PASSWORD)) return user;
    throw new InvalidCredentials('wrong password');
  },
};

const dir = mkdtempSync(join(tmpdir(), 'regmirror-tokens-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const config = parseConfig(
  {
    listen: '127.0.0.1:0',
    storage: { path: dir },
    // Never contacted: issuing a token resolves names against the config only.
    upstreams: { 'docker.io': { url: 'http://127.0.0.1:9', library: true } },
    auth: {},
    log: { level: 'warn' },
  },
  { baseDir: dir, env: {} },
);
const app = new App(config, { passwords, canRead: () => true });
const { port } = await app.start();
const url = `http://127.0.0.1:${port}/v2/token?service=regmirror&scope=repository:library/alpine:pull`;

const cases = [
  ['anonymous GET', {}],
  ['GET with HTTP Basic', { authorization: `Basic ${Buffer.from(`bench:${PASSWORD}`).toString('base64')}` }],
];
const rows = [];
try {
  for (const [label, headers] of cases) {
    const r = await wrk(url, { connections, seconds, headers });
    rows.push([label, Math.round(r.rps).toLocaleString('en'), r.p99, r.socketErrors || '-']);
    process.stderr.write(`${label}: ${Math.round(r.rps)} tokens/s\n`);
  }
} finally {
  await app.close(0);
}
const load = loadavg().map((l) => l.toFixed(2)).join(' ');
const lines = [
  `### Token issuance (${connections} connections, ${seconds} s each, ${cpus().length} CPUs, load ${load}, ${await toolVersion('wrk', ['--version'])})`,
  '',
  '| request | tokens/s | p99 | socket errors |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
];
process.stdout.write(`${lines.join('\n')}\n`);
