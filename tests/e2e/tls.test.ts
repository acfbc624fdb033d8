import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand, startContainerd, startDockerd, tempDir, writeHostsToml } from '../fixtures/daemons.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startMirror } from '../fixtures/mirror.js';
import { freshPodman, podmanConfig } from '../fixtures/podman.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { makePki } from '../fixtures/tls.js';
import { toolsMissing } from '../fixtures/tools.js';

// Every real client pulling from a mirror that speaks only HTTPS, with a certificate from a private
// CA, configured the way the README says. Each first fails without the CA (so the CA is what makes
// it work, not a client that skips verification), then pulls with it.

const TOOLS = {
  docker: toolsMissing(['dockerd', 'docker', 'containerd', 'unshare']),
  containerd: toolsMissing(['containerd', 'ctr']),
  podman: toolsMissing(['podman']),
  skopeo: toolsMissing(['skopeo']),
};
for (const [name, tools] of Object.entries(TOOLS)) if (tools.skip && tools.required) t.fail(`e2e tls ${name}: ${tools.skip}`);

const UNKNOWN_AUTHORITY = /x509: certificate signed by unknown authority/;

/** registries.conf making the mirror (no `insecure`: TLS verified) the mirror of docker.io. */
function registriesConf(mirrorHost: string): string {
  return `[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${mirrorHost}"\n`;
}

t.test('real clients pull over TLS, trusting the mirror through a private CA', async (t) => {
  t.setTimeout(240_000);
  const pki = await makePki(t);
  const server = await pki.server('regmirror');
  const upstream = await startTestRegistry(t);
  const image = quickImage('tls-e2e');
  upstream.pushImage('library/alpine', '3.20', image);
  const mirrorOn = (listen: string) =>
    startMirror(t, { upstreams: { 'docker.io': { url: upstream.url, library: true } }, listen, tls: { cert: server.cert, key: server.key } });
  const mirror = await mirrorOn('127.0.0.1:0');

  t.test('docker: certs.d/<host:port>/ca.crt, as a registry-mirrors entry', { skip: TOOLS.docker.skip }, async (t) => {
    // dockerd skips verification for every 127.0.0.0/8 registry; ::1 is not on that list.
    const v6 = await mirrorOn('[::1]:0');
    const etcDocker = tempDir(t, 'rm-etc-docker-');
    const hostDir = path.join(etcDocker, 'certs.d', v6.host);
    mkdirSync(hostDir, { recursive: true });
    const d = await startDockerd(t, { 'registry-mirrors': [v6.url] }, { etcDocker });

    const refused = await d.docker(['pull', 'alpine:3.20']);
    t.not(refused.code, 0, 'without the CA the pull fails');
    t.ok(d.daemon.lines.some((l) => l.includes(v6.host) && UNKNOWN_AUTHORITY.test(l)), 'because dockerd refused the mirror certificate', { daemon: d.daemon.lines.slice(-10) });

    // dockerd reads certs.d at each pull: no restart.
    copyFileSync(pki.caCert, path.join(hostDir, 'ca.crt'));
    const pulled = await d.docker(['pull', 'alpine:3.20']);
    t.equal(pulled.code, 0, 'with ca.crt it pulls', { stderr: pulled.stderr, daemon: d.daemon.lines.slice(-10) });
    const digests = await d.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'alpine:3.20']);
    t.same(JSON.parse(digests.stdout || '[]'), [`alpine@${image.manifestDigest}`], 'the upstream image, through the mirror');
  });

  t.test('containerd: hosts.toml with ca = "…"', { skip: TOOLS.containerd.skip }, async (t) => {
    const c = await startContainerd(t);
    const hosts = tempDir(t, 'rm-certs.d-');
    const hostEntry = `server = "${mirror.url}"\n\n[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n`;
    const pull = () => c.ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', 'docker.io/library/alpine:3.20']);

    writeHostsToml(hosts, 'docker.io', hostEntry);
    const refused = await pull();
    t.not(refused.code, 0, 'without the CA the pull fails');
    t.match(refused.stderr, UNKNOWN_AUTHORITY, 'on the certificate');

    writeHostsToml(hosts, 'docker.io', `${hostEntry}  ca = ${JSON.stringify(pki.caCert)}\n`);
    const pulled = await pull();
    t.equal(pulled.code, 0, 'with ca it pulls', { stderr: pulled.stderr });
    t.equal(await c.imageDigest('docker.io/library/alpine:3.20'), image.manifestDigest, 'the upstream image');
  });

  t.test('podman: a registries.conf mirror and --cert-dir', { skip: TOOLS.podman.skip }, async (t) => {
    const { dir, policy } = podmanConfig(t, registriesConf(mirror.host));
    const certDir = tempDir(t, 'rm-cert-dir-');
    copyFileSync(pki.caCert, path.join(certDir, 'ca.crt'));
    const podman = freshPodman(t, dir);

    const refused = await podman(['pull', '--signature-policy', policy, 'docker.io/library/alpine:3.20']);
    t.not(refused.code, 0, 'without the CA the pull fails');
    t.match(refused.stderr, UNKNOWN_AUTHORITY, 'on the mirror certificate');

    const pulled = await podman(['pull', '--signature-policy', policy, '--cert-dir', certDir, 'docker.io/library/alpine:3.20']);
    t.equal(pulled.code, 0, 'with --cert-dir it pulls', { stderr: pulled.stderr });
    const inspected = await podman(['image', 'inspect', '--format', '{{.Digest}}', 'docker.io/library/alpine:3.20']);
    t.equal(inspected.stdout.trim(), image.manifestDigest, 'the upstream image');
  });

  t.test('skopeo: --src-cert-dir, and certs.d/<host:port> for a registries.conf mirror', { skip: TOOLS.skopeo.skip }, async (t) => {
    const dir = tempDir(t, 'rm-skopeo-');
    writeFileSync(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    writeFileSync(path.join(dir, 'mirror.conf'), registriesConf(mirror.host));
    writeFileSync(path.join(dir, 'empty.conf'), '');
    const certDir = path.join(dir, 'certs');
    mkdirSync(certDir);
    copyFileSync(pki.caCert, path.join(certDir, 'ca.crt'));
    // Home of the per-user certs.d (~/.config/containers/certs.d), empty until the last step.
    const home = path.join(dir, 'home');
    const skopeo = (conf: string, args: string[]) =>
      runCommand('skopeo', ['--policy', path.join(dir, 'policy.json'), '--registries-conf', path.join(dir, conf), '--tmpdir', dir, ...args], { env: { ...process.env, HOME: home } });
    let outs = 0;
    const copy = (conf: string, src: string, flags: string[] = []) => {
      const out = path.join(dir, `out${++outs}`);
      return skopeo(conf, ['copy', ...flags, src, `dir:${out}`]).then((r) => ({ ...r, out }));
    };
    const direct = `docker://${mirror.host}/library/alpine:3.20`;

    const refused = await copy('empty.conf', direct);
    t.not(refused.code, 0, 'without the CA the copy fails');
    t.match(refused.stderr, UNKNOWN_AUTHORITY, 'on the certificate');

    const named = await copy('empty.conf', direct, ['--src-cert-dir', certDir]);
    t.equal(named.code, 0, 'naming the mirror, with --src-cert-dir', { stderr: named.stderr });
    t.equal(sha256(readFileSync(path.join(named.out, 'manifest.json'))), image.manifestDigest, 'the upstream manifest');

    const hostCerts = path.join(home, '.config', 'containers', 'certs.d', mirror.host);
    mkdirSync(hostCerts, { recursive: true });
    copyFileSync(pki.caCert, path.join(hostCerts, 'ca.crt'));
    const mirrored = await copy('mirror.conf', 'docker://docker.io/library/alpine:3.20');
    t.equal(mirrored.code, 0, 'docker.io through the registries.conf mirror, CA from certs.d', { stderr: mirrored.stderr });
    t.equal(sha256(readFileSync(path.join(mirrored.out, 'manifest.json'))), image.manifestDigest, 'the upstream manifest');
  });
});
