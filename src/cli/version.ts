import { readFileSync } from 'node:fs';

/** The release, as package.json names it: shown by --version and reported by a running server. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
