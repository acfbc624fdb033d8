import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseConfig, parseDuration } from '../../src/config/index.js';
import { runCommand } from '../fixtures/daemons.js';
import { haveTool, toolsMissing } from '../fixtures/tools.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const { version } = JSON.parse(read('package.json')) as { version: string };
const dockerfile = read('Dockerfile');
const VOLUME = /^VOLUME (\S+)$/m.exec(dockerfile)?.[1];
const CMD = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
const SERVED_CONFIG = CMD[CMD.indexOf('--config') + 1];
const DEFAULT_GRACE_MS = parseConfig({ upstreams: { 'docker.io': { url: 'https://registry.invalid' } } }, { baseDir: ROOT }).shutdownGraceMs;

t.test('the image: regmirror on PATH, finding the served config without --config', async (t) => {
  t.match(dockerfile, /^RUN chmod 0755 dist\/cli\/main\.js && ln -s \/app\/dist\/cli\/main\.js \/usr\/local\/bin\/regmirror/m, '`kubectl exec … -- regmirror cache ls` runs the CLI');
  const workdirs = [...dockerfile.matchAll(/^WORKDIR (\S+)$/gm)].map((m) => m[1]);
  t.equal(path.posix.join(workdirs.at(-1) ?? '', 'mirror.config.json'), SERVED_CONFIG, 'the default --config of a command run in the container is what serve reads');
  t.equal(path.posix.resolve(workdirs.at(-1) ?? '/', CMD[1] ?? ''), '/app/dist/cli/main.js', 'serve runs the CLI the link points at');
  t.match(dockerfile, /^ARG COMMIT=$/m);
  t.match(dockerfile, /if \[ -n "\$COMMIT" \]; then echo "\$COMMIT" > COMMIT; fi/, 'the COMMIT file --version reads, beside package.json in /app');
  t.ok(dockerfile.indexOf('ARG COMMIT=') > dockerfile.indexOf('npm ci --omit=dev'), 'a new commit does not invalidate the dependency layer');
});

t.test('deploy/docker-compose.yml: valid Compose, the image\'s volume, port and a drain longer than shutdownGrace', async (t) => {
  const file = path.join(ROOT, 'deploy/docker-compose.yml');
  const compose = parse(readFileSync(file, 'utf8')) as {
    services: Record<string, { image: string; build: { context: string }; ports: string[]; volumes: string[]; stop_grace_period: string; healthcheck: { test: string[] } }>;
    volumes: Record<string, unknown>;
  };
  t.same(Object.keys(compose.services), ['regmirror']);
  const svc = compose.services['regmirror']!;
  t.equal(svc.image, `regmirror/regmirror:${version}`, 'the tag follows package.json');
  t.ok(existsSync(path.join(path.dirname(file), svc.build.context, 'Dockerfile')), 'builds from the repository');
  t.same(svc.ports, ['5000:5000']);
  t.match(dockerfile, /^EXPOSE 5000$/m);
  t.same(svc.volumes, [`cache:${VOLUME}`], 'the cache on a named volume at the image\'s VOLUME');
  t.ok('cache' in compose.volumes);
  t.ok(parseDuration(svc.stop_grace_period)! > DEFAULT_GRACE_MS, `${svc.stop_grace_period} leaves shutdownGrace time to drain`);
  t.match(svc.healthcheck.test.join(' '), /http:\/\/127\.0\.0\.1:5000\/readyz/);

  const cli = haveTool('docker-compose') ? ['docker-compose'] : (await runCommand('docker', ['compose', 'version'])).code === 0 ? ['docker', 'compose'] : undefined;
  const tools = toolsMissing(cli === undefined ? ['docker-compose'] : []);
  if (tools.skip && tools.required) t.fail(`compose: ${tools.skip}`);
  t.test('`docker-compose config` accepts it', { skip: tools.skip }, async (t) => {
    const [command = '', ...pre] = cli!;
    const ok = await runCommand(command, [...pre, '-f', file, 'config', '-q']);
    t.equal(ok.code, 0, ok.stderr);
    // The same check refuses a misspelt key, so it is a check.
    const bad = path.join(t.testdir({}), 'docker-compose.yml');
    writeFileSync(bad, readFileSync(file, 'utf8').replace('    restart:', '    restrat:').replace('context: ..', `context: ${ROOT}`));
    const refused = await runCommand(command, [...pre, '-f', bad, 'config', '-q']);
    t.not(refused.code, 0);
    t.match(refused.stderr, /restrat/);
  });
});

t.test('deploy/regmirror.service: systemd-analyze verify has nothing to say', async (t) => {
  const unit = read('deploy/regmirror.service');
  const directive = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
  t.same(directive('ExecStart'), [`/usr/local/bin/regmirror serve --config ${SERVED_CONFIG}`], 'the CLI npm install -g puts on PATH, the path the image uses');
  t.same(directive('StateDirectory'), ['regmirror'], '/var/lib/regmirror, the storage.path the README sets');
  t.ok(parseDuration(`${directive('TimeoutStopSec')[0]}s`)! > DEFAULT_GRACE_MS, 'systemd waits longer than shutdownGrace before SIGKILL');
  t.same(directive('RestartPreventExitStatus'), ['2'], 'a config error (exit 2) is not restarted in a loop');
  t.same(directive('ExecReload'), ['/bin/kill -HUP $MAINPID'], 'reload reopens the audit file');

  const tools = toolsMissing(['systemd-analyze']);
  if (tools.skip && tools.required) t.fail(`systemd unit: ${tools.skip}`);
  t.test('systemd-analyze verify', { skip: tools.skip }, async (t) => {
    // verify insists that ExecStart's binary exists: a stand-in at the same place in a temp tree.
    const dir = t.testdir({});
    const bin = path.join(dir, 'regmirror');
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o755);
    const verify = async (text: string) => {
      mkdirSync(path.join(dir, 'units'), { recursive: true });
      const file = path.join(dir, 'units', 'regmirror.service');
      writeFileSync(file, text.replace('ExecStart=/usr/local/bin/regmirror', `ExecStart=${bin}`));
      return runCommand('systemd-analyze', ['verify', file], { env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } });
    };
    const ok = await verify(unit);
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stderr, '', 'not even a warning');
    // A value systemd cannot read is only a warning (exit 0): the empty stderr above is what catches it.
    const bad = await verify(unit.replace('TimeoutStopSec=45', 'TimeoutStopSec=soon'));
    t.match(bad.stderr, /TimeoutStopSec|soon|Failed to parse/);
  });
});
