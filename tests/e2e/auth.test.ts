import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand, startContainerd, startDockerd, tempDir, writeHostsToml, type CommandResult } from '../fixtures/daemons.js';
import { MIRROR_NAME, PRIVATE, startAuthWorld, writeAuthFile, type AuthUser, type AuthWorld } from '../fixtures/auth-world.js';
import { sha256 } from '../fixtures/images.js';
import { freshPodman, podmanConfig } from '../fixtures/podman.js';
import { toolsMissing } from '../fixtures/tools.js';

// Every real client against a mirror with auth on, over TLS with a private CA, logging in the way
// the README's "Securing the mirror" says: anonymous pulls of what access.anonymous allows, a
// private upstream by path prefix or through hosts.toml, and each refusal the way that client
// shows "unauthorized" (no or wrong credentials: 401) and "denied" (signed in, not allowed: 403).

const TOOLS = {
  docker: toolsMissing(['dockerd', 'docker', 'containerd', 'unshare']),
  containerd: toolsMissing(['containerd', 'ctr']),
  podman: toolsMissing(['podman']),
  skopeo: toolsMissing(['skopeo']),
};
for (const [name, tools] of Object.entries(TOOLS)) if (tools.skip && tools.required) t.fail(`e2e auth ${name}: ${tools.skip}`);

const APP = `${PRIVATE}/team/app`;

/** What reached the private upstream so far: a refused pull must add nothing. */
const upstreamHeard = (w: AuthWorld) => w.privateUpstream.requests.length;

t.test('real clients pull through a mirror with auth on', async (t) => {
  t.setTimeout(240_000);
  const w = await startAuthWorld(t);
  const { mirror, images, alice, bob } = w;

  t.test('docker: anonymous through registry-mirrors, docker login for a private upstream by path prefix', { skip: TOOLS.docker.skip }, async (t) => {
    const host = `${MIRROR_NAME}:${w.mirrorV6.port}`;
    const etcDocker = tempDir(t, 'rm-etc-docker-');
    mkdirSync(path.join(etcDocker, 'certs.d', host), { recursive: true });
    copyFileSync(w.pki.caCert, path.join(etcDocker, 'certs.d', host, 'ca.crt'));
    const d = await startDockerd(t, { 'registry-mirrors': [`https://${host}`] }, { etcDocker, hosts: `127.0.0.1 localhost\n::1 ${MIRROR_NAME}\n` });
    const digestsOf = async (ref: string) => JSON.parse((await d.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])).stdout.trim() || '[]') as string[];

    const anonymous = await d.docker(['pull', 'alpine:3.20']);
    t.equal(anonymous.code, 0, 'docker.io through the mirror, no credentials', { stderr: anonymous.stderr, daemon: d.daemon.lines.slice(-10) });
    t.same(await digestsOf('alpine:3.20'), [`alpine@${images.alpine.manifestDigest}`], 'the upstream image');
    t.ok(w.audit().some((a) => a.action === 'token_issued' && a.subject === 'anonymous' && a.scopes?.includes('repository:docker.io/library/alpine:pull')), 'challenged at /v2/, docker fetched an anonymous token');
    t.ok(w.audit().some((a) => a.action === 'pull_manifest' && a.subject === 'anonymous' && a.repository === 'library/alpine' && a.status === 200), 'served by the mirror, to anonymous');

    const ref = `${host}/${APP}:1.0`;
    const heard = upstreamHeard(w);
    const refused = await d.docker(['pull', ref]);
    t.not(refused.code, 0, 'without docker login the private pull fails');
    t.match(refused.stderr, /unauthorized: authentication required/, "with docker's unauthorized message", { stderr: refused.stderr });
    t.equal(upstreamHeard(w), heard, 'and the private upstream heard nothing');

    // The password through stdin, as the README shows it (never on a command line).
    const login = (user: AuthUser) => runCommand('docker', ['login', host, '-u', user.username, '--password-stdin'], { env: d.env, input: user.password });
    const badLogin = await login({ username: alice.username, password: 'not-her-password' });
    t.not(badLogin.code, 0, 'docker login checks the password');
    t.match(badLogin.stderr, /unauthorized: incorrect username or password/, 'and says it is wrong');
    const good = await login(alice);
    t.equal(good.code, 0, 'docker login', { stderr: good.stderr });
    t.match(good.stdout, /Login Succeeded/, 'as docker says it');
    const pulled = await d.docker(['pull', ref]);
    t.equal(pulled.code, 0, 'after docker login it pulls', { stderr: pulled.stderr, daemon: d.daemon.lines.slice(-10) });
    t.same(await digestsOf(ref), [`${host}/${APP}@${images.app.manifestDigest}`], 'the private upstream image');
  });

  t.test('containerd: ctr --user through hosts.toml, the OAuth2 password grant', { skip: TOOLS.containerd.skip }, async (t) => {
    const c = await startContainerd(t);
    const hosts = tempDir(t, 'rm-certs.d-');
    // The mirror is the only place to go (the registry itself is not there to fall back to; its
    // own entry, `server`, stays without the CA). containerd adds ?ns=registry.test to every request
    // to a host other than the image's registry: that is how the mirror picks the upstream.
    writeHostsToml(hosts, PRIVATE, `server = "${mirror.url}"\n\n[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n  ca = ${JSON.stringify(w.pki.caCert)}\n`);
    const ref = `${APP}:1.0`;
    const pull = (user: string[]) => c.ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', ...user, ref]);

    const heard = upstreamHeard(w);
    const refused = await pull([]);
    t.not(refused.code, 0, 'without --user the pull fails');
    t.match(refused.stderr, `pulling from host ${mirror.host} failed with status code [manifests 1.0]: 401 Unauthorized`, "on the mirror's 401", { stderr: refused.stderr });
    t.equal(upstreamHeard(w), heard, 'and the private upstream heard nothing');

    const tokenPosts = () => mirror.logs.filter((l) => l.includes('"method":"POST"') && l.includes('"route":"token"') && l.includes('"status":200')).length;
    const posts = tokenPosts();
    const pulled = await pull(['--user', `${alice.username}:${alice.password}`]);
    t.equal(pulled.code, 0, 'ctr images pull --user', { stderr: pulled.stderr });
    t.equal(await c.imageDigest(ref), images.app.manifestDigest, 'the private upstream image');
    t.ok(tokenPosts() > posts, 'containerd got its token with POST /v2/token');
    t.ok(w.audit().some((a) => a.action === 'token_issued' && a.subject === alice.username && a.scopes?.includes(`repository:${APP}:pull`)), 'issued to alice, for the repository');
  });

  t.test('podman: an auth.json entry for the mirror host', { skip: TOOLS.podman.skip }, async (t) => {
    const { dir, policy } = podmanConfig(t, '');
    const certDir = tempDir(t, 'rm-cert-dir-');
    copyFileSync(w.pki.caCert, path.join(certDir, 'ca.crt'));
    const podman = freshPodman(t, dir);
    const ref = `${mirror.host}/${APP}:1.0`;
    const pull = (authfile: string) => podman(['pull', '--signature-policy', policy, '--cert-dir', certDir, '--authfile', authfile, ref]);

    const heard = upstreamHeard(w);
    const anonymous = await pull(writeAuthFile(dir, 'none.json', {}));
    t.not(anonymous.code, 0, 'without an entry the pull fails');
    t.match(anonymous.stderr, /unauthorized: authentication required/, 'unauthorized', { stderr: anonymous.stderr });
    const denied = await pull(writeAuthFile(dir, 'bob.json', { [mirror.host]: bob }));
    t.not(denied.code, 0, 'a user no rule names cannot pull');
    t.match(denied.stderr, /denied: bob may not read/, 'denied', { stderr: denied.stderr });
    t.equal(upstreamHeard(w), heard, 'the private upstream heard nothing');

    // podman login writes the entry (and checks the password first).
    const authfile = path.join(dir, 'alice.json');
    const login = (password: string) => podman(['login', '--cert-dir', certDir, '--authfile', authfile, '-u', alice.username, '--password-stdin', mirror.host], password);
    const badLogin = await login('not-her-password');
    t.not(badLogin.code, 0, 'podman login checks the password');
    t.match(badLogin.stderr, /invalid username\/password/, 'and says it is wrong', { stderr: badLogin.stderr });
    const good = await login(alice.password);
    t.equal(good.code, 0, 'podman login', { stderr: good.stderr });
    const pulled = await pull(authfile);
    t.equal(pulled.code, 0, 'with the entry podman login wrote it pulls', { stderr: pulled.stderr });
    const inspected = await podman(['image', 'inspect', '--format', '{{.Digest}}', ref]);
    t.equal(inspected.stdout.trim(), images.app.manifestDigest, 'the private upstream image');
  });

  t.test('skopeo: auth.json entries, and a robot token as --src-creds', { skip: TOOLS.skopeo.skip }, async (t) => {
    const dir = tempDir(t, 'rm-skopeo-');
    writeFileSync(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    writeFileSync(path.join(dir, 'empty.conf'), '');
    const certDir = path.join(dir, 'certs');
    mkdirSync(certDir);
    copyFileSync(w.pki.caCert, path.join(certDir, 'ca.crt'));
    let outs = 0;
    /** `skopeo copy` with an auth.json holding `entry` for the mirror host (an empty one without), or other `flags`. */
    const copy = async (entry: AuthUser | undefined, flags?: string[]): Promise<CommandResult & { out: string }> => {
      const out = path.join(dir, `out${++outs}`);
      const auth = flags ?? ['--authfile', writeAuthFile(dir, `auth${outs}.json`, entry === undefined ? {} : { [mirror.host]: entry })];
      const args = ['--policy', path.join(dir, 'policy.json'), '--registries-conf', path.join(dir, 'empty.conf'), '--tmpdir', dir];
      const r = await runCommand('skopeo', [...args, 'copy', '--src-cert-dir', certDir, ...auth, `docker://${mirror.host}/${APP}:1.0`, `dir:${out}`]);
      return { ...r, out };
    };
    const manifestOf = (out: string) => sha256(readFileSync(path.join(out, 'manifest.json')));

    const heard = upstreamHeard(w);
    const anonymous = await copy(undefined);
    t.not(anonymous.code, 0, 'without an entry the copy fails');
    t.match(anonymous.stderr, /unauthorized: authentication required/, 'unauthorized', { stderr: anonymous.stderr });
    const denied = await copy(bob);
    t.not(denied.code, 0, 'a user no rule names cannot copy');
    t.match(denied.stderr, /denied: bob may not read/, 'denied', { stderr: denied.stderr });
    t.equal(upstreamHeard(w), heard, 'the private upstream heard nothing');

    const asAlice = await copy(alice);
    t.equal(asAlice.code, 0, 'with alice\'s entry it copies', { stderr: asAlice.stderr });
    t.equal(manifestOf(asAlice.out), images.app.manifestDigest, 'the private upstream manifest');

    // A robot token is a password that works with any user name.
    const robot = await copy(undefined, ['--src-creds', `ci-runner:${w.robotSecret}`]);
    t.equal(robot.code, 0, 'with the robot token as the password it copies', { stderr: robot.stderr });
    t.equal(manifestOf(robot.out), images.app.manifestDigest, 'the private upstream manifest');
    t.ok(w.audit().some((a) => a.action === 'pull_manifest' && a.subject === 'ci' && a.repository === 'team/app' && a.status === 200), 'pulled as the token ci');
    t.ok(mirror.app.credentials.tokens.list().find((x) => x.name === 'ci')?.lastUsedAt !== undefined, 'its last use is recorded');
  });
});
