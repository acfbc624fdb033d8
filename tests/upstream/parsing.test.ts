import t from 'tap';
import { parseChallenges } from '../../src/upstream/challenge.js';
import { realmMayReceiveCredentials } from '../../src/upstream/realm-trust.js';
import { redactText } from '../../src/upstream/redact.js';
import { rateLimitRemaining, retryAfterSeconds } from '../../src/upstream/responses.js';

const params = (c: { params: ReadonlyMap<string, string> } | undefined) => Object.fromEntries(c?.params ?? []);

t.test('Docker Hub style Bearer challenge', async (t) => {
  const [c, ...rest] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"');
  t.equal(rest.length, 0);
  t.equal(c?.scheme, 'bearer');
  t.same(params(c), { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' });
});

t.test('quoted commas, escapes, bare tokens, case and spacing', async (t) => {
  const [c] = parseChallenges('BEARER  Realm = "https://a.example/token?x=1,2" , service=gcr.io,scope="repository:a/b:pull repository:c:pull",note="say \\"hi\\""');
  t.equal(c?.scheme, 'bearer');
  t.same(params(c), {
    realm: 'https://a.example/token?x=1,2',
    service: 'gcr.io',
    scope: 'repository:a/b:pull repository:c:pull',
    note: 'say "hi"',
  });
});

t.test('several challenges in one header and across headers', async (t) => {
  const cs = parseChallenges(['Basic realm="registry", Bearer realm="https://r.example/t",service="svc"', 'Negotiate abc==']);
  t.same(
    cs.map((c) => c.scheme),
    ['basic', 'bearer', 'negotiate'],
  );
  t.same(params(cs[0]), { realm: 'registry' });
  t.same(params(cs[1]), { realm: 'https://r.example/t', service: 'svc' });
});

t.test('garbage does not throw and yields what it can', async (t) => {
  t.same(parseChallenges(undefined), []);
  t.same(parseChallenges(''), []);
  t.same(parseChallenges(',,, "'), []);
  const [c] = parseChallenges('Bearer realm="unterminated');
  t.same(params(c), { realm: 'unterminated' });
  t.equal(parseChallenges('Bearer realm=, =x, "y", service="s"')[0]?.params.get('service'), 's');
});

t.test('which realms may receive the configured credentials', async (t) => {
  const allowed = (realm: string, upstream: string) => realmMayReceiveCredentials(new URL(realm), new URL(upstream));
  t.ok(allowed('https://auth.docker.io/token', 'https://registry-1.docker.io'), 'same registrable domain');
  t.ok(allowed('https://ghcr.io/token', 'https://ghcr.io'), 'same host');
  t.ok(allowed('https://auth.example.co.uk/t', 'https://registry.example.co.uk'), 'two-label public suffix');
  t.ok(allowed('http://127.0.0.1:5001/token', 'http://127.0.0.1:5000'), 'plain http on the same host');
  t.notOk(allowed('https://evil.example/token', 'https://registry-1.docker.io'), 'another domain');
  t.notOk(allowed('https://other.co.uk/t', 'https://registry.example.co.uk'), 'sibling under a public suffix');
  t.notOk(allowed('http://auth.docker.io/token', 'https://registry-1.docker.io'), 'downgrade to http');
  t.notOk(allowed('http://auth.example.com/token', 'http://registry.example.com'), 'plain http to another host');
  t.notOk(allowed('https://127.0.0.2/token', 'https://127.0.0.1'), 'another IP literal');
  t.notOk(allowed('https://localhost/token', 'https://registry.local'), 'localhost');
  t.notOk(allowed('https://docker.io.evil.example/token', 'https://registry-1.docker.io'), 'suffix trick');
});

t.test('header helpers', async (t) => {
  t.equal(rateLimitRemaining({ 'ratelimit-remaining': '97;w=21600' }), 97);
  t.equal(rateLimitRemaining({}), undefined);
  t.equal(retryAfterSeconds({ 'retry-after': '42' }), 42);
  const now = Date.parse('2025-01-01T00:00:00Z');
  t.equal(retryAfterSeconds({ 'retry-after': 'Wed, 01 Jan 2025 00:00:30 GMT' }, now), 30);
  t.equal(retryAfterSeconds({ 'retry-after': 'soon' }, now), undefined);
  t.equal(
    redactText('GET https://u:p@storage.example/blobs/x?verify=123-sig&X-Amz-Signature=abc failed'),
    'GET https://storage.example/blobs/x failed',
  );
});
