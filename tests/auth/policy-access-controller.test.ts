import t from 'tap';
import { AccessChallenge, AccessDenied, type Access, type AccessRequest } from '../../src/access/index.js';
import { accessControllerFor, bearerChallenge, type CredentialSources } from '../../src/auth/index.js';
import { parseConfig } from '../../src/config/index.js';
import { parseRepositoryName } from '../../src/oci/index.js';
import { startMirror } from '../fixtures/mirror.js';
import { basic, standInCredentials } from '../fixtures/stand-in-credentials.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// The controller on its own, for what a real client rarely sends: certificates, odd headers, several accesses.

function controllerWith(sources: CredentialSources = standInCredentials({ users: { alice: { password: 'pw', groups: ['ops'] } } })) {
  const config = parseConfig(
    {
      upstreams: { 'docker.io': { url: 'https://hub.example', library: true }, 'quay.io': { url: 'https://quay.example' } },
      defaultUpstream: 'docker.io',
      auth: { groups: { ops: ['cert-user', 'alice'] } },
      access: { rules: [{ repositories: ['docker.io/team/*', 'quay.io/team/*'], groups: ['ops'] }], admin: { groups: ['ops'] } },
    },
    { baseDir: '/x', env: {} },
  );
  return accessControllerFor(config, sources).controller;
}

function req(url: string, headers: Record<string, string> = {}, more: Partial<AccessRequest> = {}): AccessRequest {
  return { method: 'GET', url, headers: { host: 'mirror.test:5000', ...headers }, ...more };
}

const pull = (upstream: string, repository: string): Access => ({ upstream, repository: parseRepositoryName(repository), action: 'pull' });

t.test('a verified client certificate is a user, with its groups from auth.groups', async (t) => {
  const controller = controllerWith();
  const grant = await controller.authorize(req('/v2/team/app/manifests/1', {}, { clientCertificate: 'cert-user' }), [pull('docker.io', 'team/app')]);
  t.same(grant, { principal: 'cert-user', identity: { subject: 'cert-user', kind: 'user', method: 'certificate', groups: ['ops'] } });
  t.ok(controller.canRead(grant, 'quay.io', parseRepositoryName('team/x')), 'listings are filtered by the same policy');
  t.notOk(controller.canRead(grant, 'quay.io', parseRepositoryName('other/x')));
  t.notOk(controller.canRead({ principal: 'anonymous' }, 'docker.io', parseRepositoryName('team/app')), 'a grant without an identity is anonymous');
  await t.rejects(controller.authorize(req('/v2/team/app/manifests/1', {}, { clientCertificate: 'stranger' }), [pull('docker.io', 'team/app')]), AccessDenied, 'a certificate no rule names is authenticated: 403');
  const admin = await controller.authorizeOps(req('/api/status', {}, { clientCertificate: 'cert-user' }), 'admin');
  t.equal(admin.principal, 'cert-user', 'certificates work on the ops endpoints');
});

t.test('credentials in the header win over a certificate, and wrong ones never fall back to it', async (t) => {
  const controller = controllerWith();
  const withCert = (authorization: string) => req('/v2/team/app/manifests/1', { authorization }, { clientCertificate: 'cert-user' });
  t.equal((await controller.authorize(withCert(basic('alice', 'pw')), [pull('docker.io', 'team/app')])).principal, 'alice');
  for (const bad of [basic('alice', 'wrong'), 'Basic bm9jb2xvbg==', 'Basic', 'Bearer', 'Bearer x', 'Negotiate abc', ' ']) {
    await t.rejects(controller.authorize(withCert(bad), [pull('docker.io', 'team/app')]), AccessChallenge, `"${bad}" is a 401`);
  }
  t.equal((await controller.authorize(req('/v2/', { authorization: `basic ${basic('alice', 'pw').slice(6)}` }), [])).principal, 'alice', 'scheme names are case-insensitive');
});

t.test('a failing credential source is an error, not a refusal', async (t) => {
  const controller = controllerWith({ passwords: { verify: () => Promise.reject(new Error('htpasswd unreadable')) } });
  await t.rejects(controller.authorize(req('/v2/', { authorization: basic('alice', 'pw') }), []), { message: 'htpasswd unreadable' });
});

t.test('without configured credential sources, only anonymous and certificates get in', async (t) => {
  const controller = controllerWith({});
  await t.rejects(controller.authorize(req('/v2/', { authorization: basic('alice', 'pw') }), []), AccessChallenge);
  await t.rejects(controller.authorize(req('/v2/', { authorization: 'Bearer t' }), []), AccessChallenge);
  t.equal((await controller.authorize(req('/v2/', {}, { clientCertificate: 'cert-user' }), [])).principal, 'cert-user');
});

t.test('the challenge: scopes for every access, realm from Host over http or https', async (t) => {
  const controller = controllerWith();
  const err = await controller.authorize(req('/v2/', {}, { secure: true }), [pull('docker.io', 'team/a'), pull('quay.io', 'team/b')]).catch((e: unknown) => e);
  t.ok(err instanceof AccessChallenge);
  t.equal((err as AccessChallenge).challenge, 'Bearer realm="https://mirror.test:5000/v2/token",service="regmirror",scope="repository:docker.io/team/a:pull repository:quay.io/team/b:pull"');

  const unparsable = await controller.authorize(req('/v2/te%2fam/manifests/1'), [pull('docker.io', 'team/a')]).catch((e: unknown) => e);
  t.match(unparsable, { challenge: /scope="repository:docker.io\/team\/a:pull"/ }, 'a target that does not parse: the resolved name');

  const build = bearerChallenge(undefined);
  t.equal(build(req('/v2/', { host: '[::1]:5000' }), []), 'Bearer realm="http://[::1]:5000/v2/token",service="regmirror"');
  t.equal(build(req('/v2/', { host: 'evil",realm="x' }), []), 'Bearer realm="http://localhost/v2/token",service="regmirror"', 'a Host that would break the quoting is not echoed');
  t.equal(build({ method: 'GET', url: '/v2/', headers: {} }, ['repository:a:pull'], 'insufficient_scope'), 'Bearer realm="http://localhost/v2/token",service="regmirror",scope="repository:a:pull",error="insufficient_scope"');
  t.equal(bearerChallenge('https://m.example/v2/token')(req('/v2/'), []), 'Bearer realm="https://m.example/v2/token",service="regmirror"');
});

t.test('ops endpoints: metrics "anonymous" checks nothing, admin needs access.admin', async (t) => {
  const controller = controllerWith();
  t.equal((await controller.authorizeOps(req('/metrics', { authorization: 'Bearer garbage' }), 'metrics')).principal, 'anonymous', 'an open endpoint does not look at credentials');
  await t.rejects(controller.authorizeOps(req('/api/status'), 'admin'), { name: 'AccessChallenge', challenge: 'Basic realm="regmirror", charset="UTF-8"' });
  t.equal((await controller.authorizeOps(req('/api/status', { authorization: basic('alice', 'pw') }), 'admin')).principal, 'alice', 'alice is in the ops group');
});

t.test('start-up warns when upstream credentials are open to anyone', async (t) => {
  const reg = await startTestRegistry(t);
  const open = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: 'pw' }, 'quay.io': { url: reg.url } } });
  const warnings = open.logs.map((l) => JSON.parse(l) as { level: string; msg: string; upstream?: string }).filter((l) => l.level === 'warn');
  t.match(warnings, [{ upstream: 'docker.io', msg: /ANYONE WHO CAN REACH THIS MIRROR CAN READ EVERYTHING THOSE CREDENTIALS CAN/ }]);
  t.equal(warnings.length, 1, 'only the upstream with credentials');

  const closed = await startMirror(t, {
    upstreams: { 'docker.io': { url: reg.url, username: 'mirror', password: 'pw', private: true } },
    sections: { auth: {}, access: { anonymous: ['docker.io/**'] } },
  });
  const lines = closed.logs.filter((l) => l.includes('"level":"warn"'));
  t.notOk(lines.some((l) => l.includes('ANYONE')), 'with auth configured the policy decides');
  t.ok(lines.some((l) => l.includes('access.anonymous names private upstream docker.io')), 'an anonymous pattern a private upstream overrides is pointed out');
});
