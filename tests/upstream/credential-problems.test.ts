import t from 'tap';
import { parseReference, parseRepositoryName } from '../../src/oci/index.js';
import { quickImage } from '../fixtures/images.js';
import { expectFailure, testUpstream } from '../fixtures/upstream.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

// Which credential problem an `unauthorized` names: it decides the client's wording and whether the
// upstream is auth-failed, so "rejected" must only ever mean "sent and refused".

const repo = parseRepositoryName('team/app');
const tag = parseReference('1');
const creds = { username: 'mirror', password: 'right' };

t.test('a token realm refusing a token: rejected with credentials sent, withheld when kept back, none without any', async (t) => {
  const reg = await startTestRegistry(t, { auth: { kind: 'bearer', ...creds } });
  reg.pushImage('team/app', '1', quickImage('credential-problems'));
  reg.inject({ match: { kind: 'token' }, type: 'status', status: 403 });
  const viaName = reg.url.replace('127.0.0.1', 'localhost');
  const cases = [
    { url: reg.url, overrides: creds, want: 'rejected', message: /rejected the configured credentials \(403\)/ },
    { url: viaName, overrides: creds, want: 'withheld', message: /refused an anonymous token \(the configured credentials were withheld/ },
    { url: reg.url, overrides: {}, want: 'none', message: /refused an anonymous token \(403\)/ },
  ] as const;
  for (const c of cases) {
    const { up } = testUpstream(t, c.url, c.overrides);
    const err = await expectFailure(t, up.getManifest(repo, tag, []), 'unauthorized', []);
    t.equal(err?.details.credentials, c.want);
    t.match(err?.message, c.message);
    t.notMatch(err?.message, /right/, 'no password in the message');
  }
  const withheld = reg.filter({ kind: 'token' }).filter((r) => r.headers.authorization !== undefined);
  t.equal(withheld.length, 1, 'only the trusted realm ever saw the password');
});
