import { isIP } from 'node:net';

/*
 * Second-level labels under which registrations happen one level deeper (example.co.uk). Without
 * the public-suffix list this is an approximation of eTLD+1: it errs towards "not the same domain"
 * for exotic suffixes, which only costs an anonymous token request, never a leaked password.
 */
const SECOND_LEVEL_SUFFIXES: ReadonlySet<string> = new Set(['ac', 'co', 'com', 'edu', 'gov', 'ne', 'net', 'or', 'org', 'go']);

/**
 * May the configured upstream credentials be sent to this token realm? Mirrors distribution's
 * `realmAllowed` (registry/proxy/proxyauth.go, registry-protocol.md §3.4, checklist 9): the realm must
 * be on the upstream's host or share its registrable domain (registry-1.docker.io → auth.docker.io),
 * never an IP literal or localhost on another host, and never plain http to a host other than the
 * upstream's or when the upstream itself is https.
 */
export function realmMayReceiveCredentials(realm: URL, upstream: URL): boolean {
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') return false;
  const realmHost = hostOf(realm);
  const upstreamHost = hostOf(upstream);
  if (realm.protocol === 'http:' && (upstream.protocol === 'https:' || realmHost !== upstreamHost)) return false;
  if (realmHost === upstreamHost) return true;
  if (isIP(realmHost) !== 0 || isIP(upstreamHost) !== 0) return false;
  const a = registrableDomain(realmHost);
  const b = registrableDomain(upstreamHost);
  return a !== undefined && a === b;
}

function hostOf(url: URL): string {
  // URL keeps IPv6 brackets in hostname; drop them and any trailing dot so comparisons are exact.
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

function registrableDomain(host: string): string | undefined {
  const labels = host.split('.');
  if (labels.length < 2) return undefined; // localhost, single-label intranet names
  const second = labels[labels.length - 2] ?? '';
  const take = SECOND_LEVEL_SUFFIXES.has(second) && labels.length >= 3 && (labels[labels.length - 1] ?? '').length === 2 ? 3 : 2;
  if (labels.length < take) return undefined;
  return labels.slice(-take).join('.');
}
