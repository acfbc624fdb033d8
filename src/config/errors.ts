/** A bad config: `key` is the dotted path of the offending key, so the CLI can print one precise line. */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(key === '' ? reason : `${key}: ${reason}`);
  }
}

/**
 * More than one mistake in a config: reads as the first (what `serve` prints), and lists them all
 * for `config check`.
 */
export class ConfigErrors extends ConfigError {
  override readonly name: string = 'ConfigErrors';
  constructor(readonly errors: readonly [ConfigError, ...ConfigError[]]) {
    super(errors[0].key, errors[0].reason);
  }
}
