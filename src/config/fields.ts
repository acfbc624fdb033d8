import { ConfigError } from './errors.js';

/** A JSON object from the config file, before validation. */
export type Json = Record<string, unknown>;

/** Field readers shared by every config section: each throws a ConfigError naming `key`. */
export function object(value: unknown, key: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(key, value === undefined ? 'is required' : 'must be an object');
  }
  return value as Json;
}

/** `allowed` is listed in the message as given, `$schema` included where a section accepts it. */
export function onlyKeys(obj: Json, allowed: readonly string[], key: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ConfigError(key === '' ? k : `${key}.${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

export function nonEmptyString(value: unknown, key: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(key, 'must be a non-empty string');
  return value;
}

export function optionalString(value: unknown, key: string): string | undefined {
  return value === undefined ? undefined : nonEmptyString(value, key);
}

export function integer(value: unknown, key: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new ConfigError(key, `must be an integer from ${min} to ${max}`);
  return value;
}

export function boolean(value: unknown, key: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(key, 'must be true or false');
  return value;
}

/**
 * How a parse step meets a ConfigError: `serve` stops at the first (throwFirst), `config check`
 * records it and goes on with `fallback`, so one pass reports every mistake in the file.
 */
export type Attempt = <T>(read: () => T, fallback: T) => T;

export const throwFirst: Attempt = (read) => read();

export function collectInto(errors: ConfigError[]): Attempt {
  return (read, fallback) => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(err);
      return fallback;
    }
  };
}
