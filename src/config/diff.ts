/**
 * What differs between two Configs, as dotted paths in the config file's own words (`manifestTTL`,
 * not `manifestTTLms`): a reload names the keys that changed, and those that need a restart, without
 * ever printing a value (some are secrets).
 */

/** Values named whole, not key by key: an address is one setting, `listen`, however many fields it parses into. */
const WHOLE = new Set(['listen', 'metrics.listen', 'tls.listen', 'storage.metadata']);

/** Config fields whose name differs from the file's key beyond the `Ms` suffix. */
const FILE_KEYS: Readonly<Record<string, string>> = { officialLibrary: 'library' };

/** Structural equality over what a Config holds: plain objects, arrays, Maps, URLs and RegExps. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof URL || b instanceof URL) return a instanceof URL && b instanceof URL && a.href === b.href;
  if (a instanceof RegExp || b instanceof RegExp) return a instanceof RegExp && b instanceof RegExp && a.source === b.source && a.flags === b.flags;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  const [ea, eb] = [entriesOf(a), entriesOf(b)];
  if (ea === undefined || eb === undefined || (a instanceof Map) !== (b instanceof Map)) return false;
  const keys = new Set([...ea.keys(), ...eb.keys()]);
  return [...keys].every((k) => sameValue(ea.get(k), eb.get(k)));
}

/**
 * The paths where `a` and `b` differ: objects and Maps are walked into, anything else (a list, a
 * URL, a value, a section present on one side only) is named as a whole.
 */
export function configChanges(a: unknown, b: unknown, prefix = ''): string[] {
  if (sameValue(a, b)) return [];
  const [ea, eb] = [walkable(a), walkable(b)];
  if (ea === undefined || eb === undefined || WHOLE.has(prefix)) return [prefix];
  const out: string[] = [];
  for (const key of new Set([...ea.keys(), ...eb.keys()])) {
    if (key === 'endpoints' && onlyUrl(ea) && onlyUrl(eb)) continue;
    out.push(...configChanges(ea.get(key), eb.get(key), prefix === '' ? fileKey(key) : `${prefix}.${fileKey(key)}`));
  }
  return out;
}

/** An upstream without `endpoints` in the file gets `[url]`: then a changed url is not also a changed list. */
function onlyUrl(upstream: Map<string, unknown>): boolean {
  return sameValue(upstream.get('endpoints'), [upstream.get('url')]);
}

function walkable(v: unknown): Map<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof URL || v instanceof RegExp) return undefined;
  return entriesOf(v);
}

function entriesOf(v: object): Map<string, unknown> | undefined {
  if (v instanceof Map) return new Map([...(v as Map<unknown, unknown>)].map(([k, x]) => [String(k), x]));
  // A field set to undefined is the same as one left out.
  return new Map(Object.entries(v).filter(([, x]) => x !== undefined));
}

function fileKey(key: string): string {
  // `connectMs` and `manifestTTLms`, not `upstreams`.
  return FILE_KEYS[key] ?? key.replace(/(?<=[a-z])Ms$|(?<=[A-Z])ms$/, '');
}
