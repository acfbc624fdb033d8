import t from 'tap';
import { execFile } from 'node:child_process';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { helmMissing, one, render } from '../fixtures/helm.js';
import { makePki } from '../fixtures/tls.js';

const tools = helmMissing();
if (tools.skip && tools.required) t.fail(`helm chart: ${tools.skip}`);

interface TestPodSpec {
  readonly restartPolicy: string;
  readonly containers: { readonly image: string; readonly command: string[]; readonly securityContext: { readonly readOnlyRootFilesystem: boolean } }[];
}

function run(command: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const [bin, ...args] = command;
  // The command is `node -e SCRIPT URL`: run it with this Node, as the image would.
  return new Promise((resolve) => {
    execFile(bin === 'node' ? process.execPath : (bin ?? ''), args, { timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, output: stdout + stderr });
    });
  });
}

t.test('the `helm test` pod passes against a running mirror and fails without one', { skip: tools.skip }, async (t) => {
  const objects = await render({ service: { port: 5055 } });
  const pod = one(objects, 'Pod', 'rm-regmirror-test');
  t.equal(pod.metadata.annotations?.['helm.sh/hook'], 'test');
  const spec = pod.spec as TestPodSpec;
  t.equal(spec.restartPolicy, 'Never');
  const check = spec.containers[0];
  t.equal(check?.image, 'regmirror/regmirror:0.1.0', 'the mirror image: nothing else to bring into an air-gapped cluster');
  t.equal(check?.securityContext.readOnlyRootFilesystem, true);
  const command = check?.command ?? [];
  t.equal(command.at(-1), 'http://rm-regmirror.mirrors.svc:5055', 'the Service, by its cluster DNS name and port');

  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const up = await run([...command.slice(0, -1), mirror.url]);
  t.equal(up.code, 0, up.output);
  t.match(up.output, /\/readyz 200\n\/v2\/ 200/);

  await mirror.close();
  const down = await run([...command.slice(0, -1), mirror.url]);
  t.not(down.code, 0, 'a mirror that is gone fails the test');
});

t.test('with TLS the `helm test` pod checks the HTTPS Service against the CA beside the certificate', { skip: tools.skip }, async (t) => {
  const objects = await render({ tls: { existingSecret: 'mirror-cert' } });
  const check = (one(objects, 'Pod', 'rm-regmirror-test').spec as TestPodSpec & { containers: { env?: { name: string; value: string }[] }[] }).containers[0];
  const command = check?.command ?? [];
  t.equal(command.at(-1), 'https://rm-regmirror.mirrors.svc:5000');
  const caVar = check?.env?.find((e) => e.name === 'NODE_EXTRA_CA_CERTS');
  t.equal(caVar?.value, '/etc/regmirror-tls/ca.crt');

  const pki = await makePki(t);
  const [server, other] = await Promise.all([pki.server('mirror'), makePki(t, 'not the issuer')]);
  const reg = await startTestRegistry(t);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, tls: { cert: server.cert, key: server.key } });
  const up = await run([...command.slice(0, -1), mirror.url], { NODE_EXTRA_CA_CERTS: pki.caCert });
  t.equal(up.code, 0, up.output);
  t.match(up.output, /\/readyz 200\n\/v2\/ 200/);
  const untrusted = await run([...command.slice(0, -1), mirror.url], { NODE_EXTRA_CA_CERTS: other.caCert });
  t.not(untrusted.code, 0, 'a certificate the CA did not sign fails the test');
});

t.test('with auth the `helm test` pod accepts the Bearer challenge and gets an anonymous token', { skip: tools.skip }, async (t) => {
  const command = (one(await render({ auth: { enabled: true } }), 'Pod', 'rm-regmirror-test').spec as TestPodSpec).containers[0]?.command ?? [];
  t.same(command.slice(-2), ['http://rm-regmirror.mirrors.svc:5000', 'auth']);
  const script = command.slice(0, -2);

  const reg = await startTestRegistry(t);
  // Nothing anonymous: /v2/ challenges, as it does for most mirrors with auth.
  const secured = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, sections: { auth: {} } });
  const up = await run([...script, secured.url, 'auth']);
  t.equal(up.code, 0, up.output);
  t.match(up.output, /\/readyz 200\n\/v2\/ 401\n\/v2\/token 200/);
  t.not((await run([...script, secured.url])).code, 0, 'without the auth argument a 401 fails, so it is what lets the challenge pass');

  const open = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } } });
  const noTokens = await run([...script, open.url, 'auth']);
  t.not(noTokens.code, 0, 'a mirror that issues no token fails the test');
  t.match(noTokens.output, /\/v2\/token 404/);
});
