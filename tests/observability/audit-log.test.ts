import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AuditLog, auditAction, createLogger, TrustedProxies, type AuditEvent, type AuditObserver } from '../../src/observability/index.js';
import { until } from '../fixtures/poll.js';

function event(over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    event: 'request',
    requestId: 'r1',
    principal: 'alice',
    authMethod: 'basic',
    remoteAddress: '127.0.0.1',
    action: 'manifest',
    upstream: 'docker.io',
    repository: 'library/alpine',
    reference: '3',
    decision: 'allowed',
    source: 'cache',
    bytes: 10,
    status: 200,
    ...over,
  };
}

/** An AuditLog with its app log lines and counters in reach. */
function auditLog(t: Test, config: { path: string; maxSize?: number; maxFiles?: number }, extra: { maxQueueBytes?: number; stdout?: { write(l: string): unknown } } = {}) {
  const appLog: string[] = [];
  const counts = { written: 0, dropped: 0 };
  const observer: AuditObserver = { auditLines: (result, n) => void (counts[result] += n) };
  const log = new AuditLog({
    config: { maxSize: 1024 * 1024, maxFiles: 5, ...config },
    trustedProxies: [],
    logger: createLogger('debug', { write: (l: string) => void appLog.push(l) }),
    stdout: extra.stdout ?? { write: () => undefined },
    observer,
    now: () => Date.UTC(2026, 0, 2, 3, 4, 5),
    maxQueueBytes: extra.maxQueueBytes,
  });
  t.teardown(() => log.close());
  const messages = () => appLog.map((l) => JSON.parse(l) as { level: string; msg: string; dropped?: number });
  return { log, counts, messages };
}

/** An opened AuditLog writing `audit.log` in a fresh directory of the test's. */
async function fileLog(t: Test, config: { maxSize?: number; maxFiles?: number } = {}, extra: { maxQueueBytes?: number } = {}) {
  const file = path.join(t.testdir({}), 'audit.log');
  const made = auditLog(t, { path: file, ...config }, extra);
  await made.log.open();
  return { file, ...made };
}

function burst(log: AuditLog, count: number, prefix = 'r'): void {
  for (let i = 0; i < count; i++) log.record(event({ requestId: `${prefix}${i}` }));
}

const lines = (file: string): Record<string, unknown>[] =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) : [];
const ids = (file: string) => lines(file).map((l) => l['requestId']);

t.test('an event is one JSON line with every field, in a fixed order', async (t) => {
  const out: string[] = [];
  const { log, counts } = auditLog(t, { path: 'stdout' }, { stdout: { write: (l: string) => void out.push(l) } });
  log.record(event({ digest: 'sha256:abc', head: true, forwardedFor: '203.0.113.7' }));
  log.record(event({ action: 'base' }));
  t.equal(out.length, 1, '/v2/ itself is not a line');
  t.ok(out[0]!.endsWith('\n'));
  const line = JSON.parse(out[0]!) as Record<string, unknown>;
  t.same(Object.keys(line), ['log', 'time', 'action', 'attempted', 'subject', 'method', 'client', 'upstream', 'repository', 'reference', 'digest', 'head', 'source', 'status', 'bytes', 'scopes', 'requestId']);
  t.same(line, {
    log: 'audit',
    time: '2026-01-02T03:04:05.000Z',
    action: 'pull_manifest',
    attempted: null,
    subject: 'alice',
    method: 'basic',
    client: '127.0.0.1',
    upstream: 'docker.io',
    repository: 'library/alpine',
    reference: '3',
    digest: 'sha256:abc',
    head: true,
    source: 'cache',
    status: 200,
    bytes: 10,
    scopes: null,
    requestId: 'r1',
  }, 'X-Forwarded-For from an untrusted peer is ignored');
  t.equal(counts.written, 1);

  out.length = 0;
  log.record(event({ event: 'token_issued', action: 'token', principal: 'ci', authMethod: 'robot', scopes: ['repository:library/alpine:pull'], upstream: undefined, repository: undefined, reference: undefined, source: undefined, bytes: undefined }));
  log.record(event({ principal: undefined, authMethod: undefined, decision: 'challenged', status: 401, source: undefined, bytes: undefined }));
  t.match(JSON.parse(out[0]!), { action: 'token_issued', subject: 'ci', method: 'robot', scopes: ['repository:library/alpine:pull'], upstream: null, bytes: 0 });
  t.match(JSON.parse(out[1]!), { action: 'denied', attempted: 'pull_manifest', subject: 'anonymous', method: 'anonymous', status: 401, source: null });
});

t.test('which events are lines, and as what', async (t) => {
  const cases: [string, Partial<AuditEvent>, ReturnType<typeof auditAction>][] = [
    ['manifest pull', {}, { action: 'pull_manifest', attempted: null }],
    ['blob pull, 404', { action: 'blob', status: 404 }, { action: 'pull_blob', attempted: null }],
    ['tags', { action: 'tags' }, { action: 'list_tags', attempted: null }],
    ['referrers', { action: 'referrers' }, { action: 'referrers', attempted: null }],
    ['catalog', { action: 'catalog' }, { action: 'catalog', attempted: null }],
    ['403', { action: 'blob', decision: 'denied', status: 403 }, { action: 'denied', attempted: 'pull_blob' }],
    ['401 without credentials', { action: 'tags', decision: 'challenged', status: 401 }, { action: 'denied', attempted: 'list_tags' }],
    ['401 with bad credentials', { event: 'auth_failed', decision: 'challenged', status: 401 }, { action: 'auth_failed', attempted: 'pull_manifest' }],
    ['/v2/ with bad credentials', { event: 'auth_failed', action: 'base', decision: 'challenged', status: 401 }, { action: 'auth_failed', attempted: null }],
    ['/v2/ refused', { action: 'base', decision: 'denied', status: 403 }, { action: 'denied', attempted: null }],
    ['/v2/ without credentials: the login discovery step', { action: 'base', decision: 'challenged', status: 401 }, undefined],
    ['/v2/ allowed', { action: 'base' }, undefined],
    ['token issued', { event: 'token_issued', action: 'token' }, { action: 'token_issued', attempted: null }],
    ['a bad path', { action: 'other', decision: 'none', status: 400 }, { action: 'bad_request', attempted: null }],
    ['an endpoint that audits itself', { action: 'token', decision: 'none' }, undefined],
  ];
  for (const [label, over, want] of cases) t.same(auditAction(event(over)), want, label);
});

t.test('X-Forwarded-For names the client only behind a trusted proxy', async (t) => {
  const proxies = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8', '::ffff:192.168.0.0/112']);
  const cases: [string, string | undefined, string | undefined, string | undefined][] = [
    ['no header', '127.0.0.1', undefined, '127.0.0.1'],
    ['untrusted peer: the header is ignored', '198.51.100.1', '203.0.113.7', '198.51.100.1'],
    ['trusted peer', '127.0.0.1', '203.0.113.7', '203.0.113.7'],
    ['the right-most untrusted hop, not the forgeable left end', '127.0.0.1', '1.1.1.1, 203.0.113.7, 10.1.2.3', '203.0.113.7'],
    ['IPv4-mapped peer', '::ffff:127.0.0.1', '203.0.113.7', '203.0.113.7'],
    ['IPv4-mapped peer, no header: the IPv4 spelling', '::ffff:198.51.100.1', undefined, '198.51.100.1'],
    ['IPv6 CIDR', 'fd12::1', '2001:db8::5', '2001:db8::5'],
    ['mapped CIDR', '192.168.7.7', '203.0.113.7', '203.0.113.7'],
    ['every hop trusted: the left-most', '10.0.0.1', '10.0.0.2, 10.0.0.3', '10.0.0.2'],
    ['hops with ports', '127.0.0.1', '[2001:db8::9]:443, 203.0.113.7:5678', '203.0.113.7'],
    ['a bracketed IPv6 hop', '127.0.0.1', '[2001:db8::9]', '2001:db8::9'],
    ['garbage stops the walk at the last address', '127.0.0.1', 'evil"\n, 10.9.9.9', '10.9.9.9'],
    ['garbage right at the proxy', '127.0.0.1', 'unknown', '127.0.0.1'],
    ['no peer', undefined, '203.0.113.7', undefined],
  ];
  for (const [label, peer, xff, want] of cases) t.equal(proxies.clientAddress(peer, xff), want, label);
  t.equal(new TrustedProxies([]).clientAddress('127.0.0.1', '203.0.113.7'), '127.0.0.1', 'no trusted proxies: never');
  t.notOk(proxies.has('not-an-ip'));
  // Past the memo's bound the answers stay right.
  for (let i = 0; i < 5000; i++) proxies.has(`198.51.${i >> 8}.${i & 255}`);
  t.ok(proxies.has('10.200.0.1') && !proxies.has('198.51.0.1'), 'answers after the memo starts over');
});

t.test('a file: appended, created with its directory, not world-readable', async (t) => {
  const dir = t.testdir({ 'audit.log': '{"earlier":true}\n' });
  const { log, counts } = auditLog(t, { path: path.join(dir, 'audit.log') });
  await log.open();
  log.record(event({ requestId: 'a' }));
  log.record(event({ requestId: 'b' }));
  await log.close();
  t.same(lines(path.join(dir, 'audit.log')).map((l) => l['requestId'] ?? 'earlier'), ['earlier', 'a', 'b'], 'appended after what was there');
  t.same(counts, { written: 2, dropped: 0 });
  log.record(event({ requestId: 'late' }));
  t.same(counts, { written: 2, dropped: 1 }, 'after close a line is dropped and counted');

  const nested = path.join(dir, 'new', 'deeper', 'audit.log');
  const second = auditLog(t, { path: nested }).log;
  await second.open();
  t.equal(statSync(nested).mode & 0o777, 0o640);
  await t.rejects(auditLog(t, { path: path.join(dir, 'audit.log', 'x') }).log.open(), { code: 'EEXIST' }, 'a path that cannot be opened fails open()');
});

t.test('size rotation: a burst loses no line, files stay under maxSize, order is kept', async (t) => {
  const { file, log, counts } = await fileLog(t, { maxSize: 2048, maxFiles: 100 });
  burst(log, 300);
  await log.close();
  const files = [...Array.from({ length: 100 }, (_, i) => `${file}.${100 - i}`), file].filter((f) => existsSync(f));
  t.ok(files.length > 10, `rotated into ${files.length} files`);
  for (const f of files) t.ok(statSync(f).size <= 2048, `${path.basename(f)} within maxSize`);
  t.same(files.flatMap(ids), Array.from({ length: 300 }, (_, i) => `r${i}`), 'every line once, oldest file first');
  t.same(counts, { written: 300, dropped: 0 });
});

t.test('size rotation keeps maxFiles rotated files, the newest lines', async (t) => {
  const { file, log } = await fileLog(t, { maxSize: 2048, maxFiles: 2 });
  burst(log, 300);
  await log.close();
  t.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`));
  t.notOk(existsSync(`${file}.3`), 'no third rotated file');
  const kept = [`${file}.2`, `${file}.1`, file].flatMap(ids);
  t.same(kept, Array.from({ length: kept.length }, (_, i) => `r${300 - kept.length + i}`), 'a contiguous run ending with the last line');
});

t.test('a file truncated by copytruncate is written on, not rotated', async (t) => {
  const { file, log } = await fileLog(t, { maxSize: 4096, maxFiles: 3 });
  burst(log, 10, 'a');
  await until('lines written', () => ids(file).length, (n) => n === 10);
  truncateSync(file, 0);
  burst(log, 10, 'b');
  await log.close();
  t.notOk(existsSync(`${file}.1`), 'not rotated');
  t.same(ids(file), Array.from({ length: 10 }, (_, i) => `b${i}`));
});

t.test('reopen() after the file was renamed away (logrotate create + SIGHUP)', async (t) => {
  const { file, log } = await fileLog(t);
  log.record(event({ requestId: 'before' }));
  await until('the first line', () => ids(file).length === 1);
  renameSync(file, `${file}.old`);
  log.reopen();
  log.record(event({ requestId: 'after' }));
  await log.close();
  t.same(ids(`${file}.old`), ['before']);
  t.same(ids(file), ['after'], 'a new file at the path');
  log.reopen();
});

t.test('the queue is bounded: past it lines are dropped, counted and warned about once', async (t) => {
  // About four lines' worth.
  const { file, log, counts, messages } = await fileLog(t, {}, { maxQueueBytes: 1600 });
  burst(log, 100);
  await log.close();
  t.ok(counts.dropped > 0 && counts.written > 0, `${counts.written} written, ${counts.dropped} dropped`);
  t.equal(counts.written + counts.dropped, 100);
  t.equal(ids(file).length, counts.written);
  t.equal(messages().filter((m) => /cannot keep up/.test(m.msg)).length, 1, 'one warning for the episode');
  t.match(messages().find((m) => /drained/.test(m.msg)), { level: 'warn', dropped: counts.dropped });
});

t.test('a write error: one warning, lines queued and retried, a cut line ended before the next', async (t) => {
  const { file, log, counts, messages } = await fileLog(t);
  log.record(event({ requestId: 'r0' }));
  await until('the first line', () => ids(file).length === 1);
  // The path turns into a directory: reopening fails (EISDIR) until it is a file again.
  renameSync(file, `${file}.old`);
  mkdirSync(file);
  log.reopen();
  for (let i = 1; i <= 5; i++) log.record(event({ requestId: `r${i}` }));
  await until('the failure reported', () => messages().some((m) => /write failed/.test(m.msg)));
  log.record(event({ requestId: 'r6' }));
  rmdirSync(file);
  writeFileSync(file, '{"cut":');
  await until('writable again', () => messages().some((m) => /writable again/.test(m.msg)), Boolean, { timeoutMs: 10_000 });
  await log.close();
  t.equal(messages().filter((m) => /write failed/.test(m.msg)).length, 1, 'one warning for the outage');
  const text = readFileSync(file, 'utf8');
  t.ok(text.startsWith('{"cut":\n'), 'the cut line is ended');
  t.same(text.split('\n').slice(1, -1).map((l) => (JSON.parse(l) as { requestId: string }).requestId), ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'], 'nothing lost');
  t.same(counts, { written: 7, dropped: 0 });
});

t.test('lines queued at close are written; a write that still fails drops them, counted', async (t) => {
  const { file, log } = await fileLog(t);
  burst(log, 50);
  await log.close();
  t.equal(ids(file).length, 50);

  const full = auditLog(t, { path: '/dev/full' });
  await full.log.open();
  for (let i = 0; i < 3; i++) full.log.record(event());
  await full.log.close();
  t.same(full.counts, { written: 0, dropped: 3 });
  t.equal(full.messages().filter((m) => /write failed/.test(m.msg)).length, 1);
});

t.test('stdout: a stream that throws loses the line, never the request', async (t) => {
  const { log, counts } = auditLog(t, { path: 'stdout' }, { stdout: { write: () => { throw new Error('stream closed'); } } });
  t.doesNotThrow(() => log.record(event()));
  t.same(counts, { written: 0, dropped: 1 });
});
