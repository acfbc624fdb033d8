import t from 'tap';
import { AccessChallenge, AccessDenied, allowAll, type AccessController } from '../../src/access/index.js';
import type { AuditEvent, AuditSink } from '../../src/observability/index.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { errorCode, request, type RawResponse } from '../fixtures/http.js';
import { startMirror } from '../fixtures/mirror.js';
import { startTestRegistry } from '../fixtures/test-registry.js';

/** An Access as plain strings (the repository is a branded name in src/). */
interface Asked {
  readonly upstream: string;
  readonly repository: string;
  readonly action: string;
}

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** An audit sink whose events can be awaited by request id (they are recorded when the response ends). */
function auditLog(): AuditSink & { events: AuditEvent[]; eventFor(res: RawResponse): Promise<AuditEvent> } {
  const events: AuditEvent[] = [];
  const waiting = new Map<string, (e: AuditEvent) => void>();
  return {
    events,
    record(event) {
      events.push(event);
      waiting.get(event.requestId)?.(event);
    },
    eventFor(res) {
      const id = String(res.headers['x-request-id']);
      const seen = events.find((e) => e.requestId === id);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiting.set(id, resolve));
    },
  };
}

async function world(t: { teardown(fn: () => unknown): void }, decide: Pick<AccessController, 'authorize'>) {
  const access: AccessController = { ...allowAll, ...decide };
  const reg = await startTestRegistry(t);
  const img = quickImage('access');
  reg.pushImage('library/alpine', '3', img);
  reg.pushImage('team/app', '1', img);
  const audit = auditLog();
  const mirror = await startMirror(t, {
    upstreams: { 'docker.io': { url: reg.url, library: true }, 'ghcr.io': { url: reg.url } },
    access,
    audit,
  });
  return { reg, img, mirror, audit };
}

t.test('the controller is asked for a pull of the resolved repository on every repository route', async (t) => {
  const asked: (readonly Asked[])[] = [];
  const { img, mirror, audit } = await world(t, {
    authorize: async (_req, accesses) => {
      asked.push(accesses);
      return { principal: 'robot' };
    },
  });
  const layer = img.layers[0]!;
  const cases: [string, string, Asked][] = [
    ['manifest, default upstream with library/', '/v2/alpine/manifests/3', { upstream: 'docker.io', repository: 'library/alpine', action: 'pull' }],
    ['blob, path prefix', `/v2/ghcr.io/team/app/blobs/${layer.digest}`, { upstream: 'ghcr.io', repository: 'team/app', action: 'pull' }],
    ['tags, ?ns=', '/v2/team/app/tags/list?ns=ghcr.io', { upstream: 'ghcr.io', repository: 'team/app', action: 'pull' }],
    ['referrers', `/v2/team/app/referrers/${layer.digest}`, { upstream: 'docker.io', repository: 'team/app', action: 'pull' }],
  ];
  for (const [label, path, want] of cases) {
    asked.length = 0;
    const res = await request(`${mirror.url}${path}`, { headers: { accept: ACCEPT } });
    t.same(asked, [[want]], label);
    const event = await audit.eventFor(res);
    t.match(event, { principal: 'robot', decision: 'allowed', upstream: want.upstream, repository: want.repository, status: res.status }, `${label}: audited`);
  }
  asked.length = 0;
  await request(`${mirror.url}/v2/`);
  t.same(asked, [[]], '/v2/ authenticates without asking for a repository');
});

t.test('a denying controller: an OCI error, and upstream never hears of it', async (t) => {
  const { reg, img, mirror, audit } = await world(t, {
    authorize: async (req) => {
      if (req.headers.authorization === undefined) throw new AccessChallenge('log in to this mirror', 'Bearer realm="http://mirror.test/token",service="mirror.test"');
      throw new AccessDenied('team/app is not yours', 'alice');
    },
  });
  reg.resetRequests();
  const challenged = await request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT } });
  t.equal(challenged.status, 401);
  t.equal(errorCode(challenged), 'UNAUTHORIZED');
  t.equal(challenged.headers['www-authenticate'], 'Bearer realm="http://mirror.test/token",service="mirror.test"');
  t.equal(challenged.headers['content-type'], 'application/json');

  const denied = await request(`${mirror.url}/v2/team/app/blobs/${img.layers[0]!.digest}`, { headers: { authorization: 'Bearer x' } });
  t.equal(denied.status, 403);
  t.equal(errorCode(denied), 'DENIED');
  t.equal(reg.count(), 0, 'no upstream request for a refused pull');

  t.match(await audit.eventFor(challenged), { decision: 'challenged', principal: undefined, action: 'manifest', repository: 'team/app', reference: '1', status: 401 });
  t.match(await audit.eventFor(denied), { decision: 'denied', principal: 'alice', authMethod: 'bearer', action: 'blob', status: 403 }, 'the refused identity, as the refusal names it');
});

t.test('one audit event per registry request, with what was served', async (t) => {
  const { img, mirror, audit } = await world(t, { authorize: async () => ({ principal: 'anyone' }) });
  const layer = img.layers[0]!;
  const cold = await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  t.equal(sha256(cold.body), layer.digest);
  await mirror.app.settled();
  const warm = await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`);
  const missing = await request(`${mirror.url}/v2/team/app/manifests/nope`);
  const invalid = await request(`${mirror.url}/v2/Team/app/manifests/1`);
  const probe = await request(`${mirror.url}/healthz`);

  t.match(await audit.eventFor(cold), { principal: 'anyone', action: 'blob', upstream: 'docker.io', repository: 'team/app', reference: layer.digest, decision: 'allowed', source: 'upstream', bytes: layer.size, status: 200 });
  t.match(await audit.eventFor(warm), { source: 'cache', bytes: layer.size, status: 200 });
  t.match(await audit.eventFor(missing), { action: 'manifest', decision: 'allowed', status: 404, source: undefined });
  t.match(await audit.eventFor(invalid), { action: 'other', decision: 'none', principal: undefined, status: 400 });
  const ids = [cold, warm, missing, invalid].map((r) => String(r.headers['x-request-id']));
  for (const id of ids) t.equal(audit.events.filter((e) => e.requestId === id).length, 1, `exactly one event for ${id}`);
  t.equal(audit.events.filter((e) => e.requestId === String(probe.headers['x-request-id'])).length, 0, 'ops endpoints are not audited');
});
