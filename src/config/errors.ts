/** A bad config: `key` is the dotted path of the offending key, so the CLI can print one precise line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(key === '' ? reason : `${key}: ${reason}`);
  }
}
