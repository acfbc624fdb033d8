import { access, constants, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatSizeLike, type Config, type UpstreamConfig } from '../config/index.js';
import { IndexSnapshot, PinBudgetError } from '../cache/index.js';
import { errorCode } from '../observability/index.js';
import { failureLine, probeUpstream, UpstreamError, type UpstreamObserver } from '../upstream/index.js';

/** One line of `regmirror doctor`: how it went and what was checked. */
export interface CheckLine {
  readonly level: 'ok' | 'warn' | 'FAIL';
  readonly what: string;
}

export interface DoctorDeps {
  /** Whether a repository key (`upstream/repository`) is pinned: storage.pin, sync entries and `import --pin`. */
  readonly isPinned: (repoKey: string) => boolean;
  /** Who the process runs as, for permission messages. */
  readonly user?: () => string;
}

/** Pins holding more than this share of the budget leave little room for anything else. */
const PINS_WARN_SHARE = 0.8;
const QUIET: UpstreamObserver = { upstreamRequest: () => {}, rateLimitRemaining: () => {} };

/**
 * What `regmirror doctor` and `serve --check` check before an operator trusts a config: each upstream
 * answers as a registry and takes the credentials, the storage can be written by this user, and
 * what is pinned fits the budget. Every check runs; none stops the others.
 */
export async function runDoctor(config: Config, deps: DoctorDeps): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  for (const upstream of config.upstreams.values()) lines.push(...(await upstreamChecks(upstream)));
  lines.push(await storageCheck(config.storage.path, deps.user ?? currentUser));
  lines.push(await pinsCheck(config, deps.isPinned));
  return lines;
}

export function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // A uid without a passwd entry (containers run as arbitrary uids): the number is what there is.
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/**
 * Each of `endpoints` is checked as an upstream of its own. One before the last failing is a warning:
 * the next one serves in its place, which is what the list is for.
 */
async function upstreamChecks(config: UpstreamConfig): Promise<CheckLine[]> {
  const endpoints = config.offline ? [] : (config.endpoints ?? []);
  if (endpoints.length < 2) return endpointChecks(config, `upstream ${config.name}`);
  const lines: CheckLine[] = [];
  for (const [i, url] of endpoints.entries()) {
    const checks = await endpointChecks({ ...config, url, endpoints: [url] }, `upstream ${config.name} endpoint ${i + 1}`);
    lines.push(...(i < endpoints.length - 1 ? checks.map((c): CheckLine => (c.level === 'FAIL' ? { ...c, level: 'warn' } : c)) : checks));
  }
  return lines;
}

async function endpointChecks(config: UpstreamConfig, name: string): Promise<CheckLine[]> {
  let report;
  try {
    report = await probeUpstream(config, { observer: QUIET });
  } catch (err) {
    if (err instanceof UpstreamError) return [{ level: 'FAIL', what: `${name}: ${failureLine(err)}` }];
    throw err;
  }
  if (report === undefined) return [{ level: 'ok', what: `${name}: skipped (offline: never contacted)` }];
  const answered = `GET ${report.url} answered ${report.status}`;
  if (!report.registry) return [{ level: 'FAIL', what: `${name}: not a registry: ${answered} without Docker-Distribution-API-Version (check upstreams.${config.name}.url)` }];
  const lines: CheckLine[] = [];
  if (report.status >= 500) lines.push({ level: 'FAIL', what: `${name}: ${answered}` });
  else if (report.status !== 200 && report.status !== 401) lines.push({ level: 'warn', what: `${name}: ${answered}` });
  else lines.push({ level: 'ok', what: `${name}: registry at ${report.url} (answered ${report.status})` });
  const c = report.credentials;
  if (c.verdict === 'accepted') lines.push({ level: 'ok', what: `${name}: credentials accepted (${c.how === 'token' ? 'token issued' : 'Basic'})` });
  else if (c.verdict === 'rejected') lines.push({ level: 'FAIL', what: `${name}: credentials rejected: ${c.detail} (check upstreams.${config.name} username and password)` });
  else if (c.verdict === 'withheld') lines.push({ level: 'warn', what: `${name}: credentials ${c.detail}` });
  else if (c.verdict === 'not-asked') lines.push({ level: 'ok', what: `${name}: credentials not checked: it asks for no login` });
  return lines;
}

/** A file written and removed where serve will write; a directory not there yet must be creatable. */
async function storageCheck(root: string, user: () => string): Promise<CheckLine> {
  let dir = root;
  while (!(await exists(dir)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const probe = path.join(dir, `.regmirror-doctor-${process.pid}`);
  try {
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (err) {
    const code = errorCode(err) ?? String(err);
    const where = dir === root ? '' : ` (it does not exist, and its parent ${dir} is not writable)`;
    if (code === 'EACCES' || code === 'EPERM') return { level: 'FAIL', what: `storage ${root}: not writable by user ${user()}${where} (${code})` };
    return { level: 'FAIL', what: `storage ${root}: cannot write (${code})${where}` };
  }
  return { level: 'ok', what: `storage ${root}: writable by user ${user()}${dir === root ? '' : ' (will be created)'}` };
}

async function exists(p: string): Promise<boolean> {
  return access(p, constants.F_OK).then(
    () => true,
    () => false,
  );
}

/** The pinned blobs the last server's index snapshot lists, against storage.maxSize (what serve refuses to start with). */
async function pinsCheck(config: Config, isPinned: (repoKey: string) => boolean): Promise<CheckLine> {
  const max = config.storage.maxSize;
  const snapshot = await new IndexSnapshot(config.storage.path).load().catch(() => undefined);
  const pinned = (snapshot?.blobs ?? []).filter((b) => b.repos.some(isPinned)).reduce((n, b) => n + b.size, 0);
  const budget = `storage.maxSize ${formatSizeLike(max, max)}`;
  if (pinned > max) return { level: 'FAIL', what: `pins: ${new PinBudgetError(pinned, max).message}` };
  if (pinned > max * PINS_WARN_SHARE) return { level: 'warn', what: `pins: ${formatSizeLike(pinned, max)} pinned of ${budget}: little room left for anything else` };
  return { level: 'ok', what: `pins: ${formatSizeLike(pinned, max)} pinned of ${budget}` };
}
