import { formatBytes } from '../config/index.js';

/**
 * Log lines for a person at a terminal: one line per request, in the order an operator scans it
 * (time, what, outcome, size, cache, duration, who), e.g.
 *   09:01:07 GET blob library/alpine sha256:27b3… 200 2.9MiB hit 5ms 10.0.3.7 containerd/1.6
 * and `09:01:07 INFO message key=value …` for everything else. Machines get the JSON lines.
 */
export function prettyLine(json: string, options: { color: boolean }): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  // Not a pino line (an audit record sharing stdout): as it was written.
  if (typeof record['msg'] !== 'string' || typeof record['level'] !== 'string') return json;
  const paint = painter(options.color);
  const time = clock(record['time']);
  const text = record['msg'] === 'request' && typeof record['method'] === 'string' ? requestLine(record, paint) : messageLine(record, paint);
  return `${paint('dim', time)} ${text}\n`;
}

type Paint = (style: keyof typeof STYLES, text: string) => string;
const STYLES = { dim: 2, red: 31, green: 32, yellow: 33, cyan: 36, magenta: 35 } as const;

function painter(color: boolean): Paint {
  return color ? (style, text) => `\x1b[${STYLES[style]}m${text}\x1b[0m` : (_style, text) => text;
}

function clock(time: unknown): string {
  const d = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** What the cache did, in the words people use for a cache. */
const SOURCE_WORD: Readonly<Record<string, string>> = { cache: 'hit', upstream: 'miss', inflight: 'joined', stale: 'stale' };
/** The access line's own fields: everything else it carries is printed as key=value after them. */
const REQUEST_FIELDS = new Set(['level', 'time', 'msg', 'service', 'requestId', 'method', 'route', 'upstream', 'repository', 'reference', 'status', 'bytes', 'source', 'durationMs', 'aborted', 'client', 'userAgent']);

function requestLine(r: Record<string, unknown>, paint: Paint): string {
  const status = typeof r['status'] === 'number' ? r['status'] : 0;
  const statusText = paint(status === 0 || status >= 500 ? 'red' : status >= 400 ? 'yellow' : 'green', String(status));
  const parts = [
    String(r['method']),
    String(r['route']),
    repositoryName(r['upstream'], r['repository']),
    shortReference(r['reference']),
    statusText,
    typeof r['bytes'] === 'number' ? formatBytes(r['bytes']).replace(' ', '') : undefined,
    typeof r['source'] === 'string' ? (SOURCE_WORD[r['source']] ?? r['source']) : undefined,
    r['aborted'] === true ? paint('red', 'aborted') : undefined,
    typeof r['durationMs'] === 'number' ? duration(r['durationMs']) : undefined,
    typeof r['client'] === 'string' ? r['client'] : undefined,
    typeof r['userAgent'] === 'string' ? shortAgent(r['userAgent']) : undefined,
  ];
  const rest = fields(r, (k) => !REQUEST_FIELDS.has(k));
  return [...parts.filter((p): p is string => p !== undefined && p !== ''), ...rest].join(' ');
}

/** Image names as people write them: Docker Hub's without its host, others with it. */
function repositoryName(upstream: unknown, repository: unknown): string | undefined {
  if (typeof repository !== 'string') return undefined;
  return typeof upstream === 'string' && upstream !== 'docker.io' ? `${upstream}/${repository}` : repository;
}

function shortReference(reference: unknown): string | undefined {
  if (typeof reference !== 'string') return undefined;
  const m = /^([a-z0-9]+):([a-f0-9]{4})[a-f0-9]{8,}$/.exec(reference);
  return m === null ? reference : `${m[1]}:${m[2]}…`;
}

function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** `containerd/1.6.20+unknown` is `containerd/1.6`: the product and its minor version, not the build. */
function shortAgent(agent: string): string {
  const first = agent.trim().split(/\s+/)[0] ?? '';
  const m = /^([^/]+)\/v?(\d+)\.(\d+)/.exec(first);
  return (m === null ? first : `${m[1]}/${m[2]}.${m[3]}`).slice(0, 40);
}

const LEVEL_STYLE: Readonly<Record<string, keyof typeof STYLES>> = { fatal: 'red', error: 'red', warn: 'yellow', info: 'cyan', debug: 'magenta', trace: 'dim' };

function messageLine(r: Record<string, unknown>, paint: Paint): string {
  const level = String(r['level']);
  const word = paint(LEVEL_STYLE[level] ?? 'dim', level.toUpperCase().padEnd(5));
  return [word, String(r['msg']), ...fields(r, (k) => !['level', 'time', 'msg', 'service'].includes(k))].join(' ');
}

/** The other fields as key=value; objects as compact JSON, on the same line. */
function fields(r: Record<string, unknown>, keep: (key: string) => boolean): string[] {
  return Object.entries(r)
    .filter(([k, v]) => keep(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) && v !== '' ? v : JSON.stringify(v)}`);
}
